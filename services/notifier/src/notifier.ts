import { createMailer, loadTemplates } from "@pwsync/alert-mail";
import { openEventLog, type EventLog, type Processor } from "@pwsync/eventlog";
import type { Logger } from "@pwsync/log";
import type { NotifierConfig } from "./config.js";
import { startHealthServer } from "./health.js";
import { startNotificationProcessor } from "./processor.js";

export interface NotifierOptions {
  logger: Logger;
  /** Share an open event log (a launcher running several services); otherwise one is opened from config.database.url. */
  eventLog?: EventLog;
  memberId?: string;
  pollIntervalMs?: number;
}

export interface RunningNotifier {
  readonly healthPort: number;
  readonly processor: Processor;
  stop(): Promise<void>;
}

export async function startNotifier(config: NotifierConfig, options: NotifierOptions): Promise<RunningNotifier> {
  const { logger } = options;
  // Template mistakes surface at startup, not in the middle of an incident.
  const templates = loadTemplates(config.templatesDir);
  const health = await startHealthServer(config.health.host, config.health.port);
  const ownsLog = !options.eventLog;
  let eventLog: EventLog | undefined;
  const mailer = createMailer(config.smtp);
  try {
    eventLog = options.eventLog ?? (await openEventLog(config.database.url, { applicationName: "pwsync-notifier" }));
    const processor = await startNotificationProcessor(
      { log: eventLog, config, templates, mailer, logger },
      { ...(options.memberId ? { memberId: options.memberId } : {}), ...(options.pollIntervalMs ? { pollIntervalMs: options.pollIntervalMs } : {}) },
    );
    health.setServing(true);
    logger.info(
      {
        event: "ready",
        healthPort: health.port,
        smtp: `${config.smtp.host}:${config.smtp.port}`,
        notifyAdmins: config.notifyAdmins,
        notifyEndUser: config.notifyEndUser,
        admins: config.adminRecipients.length,
        throttle: config.throttle,
        memberId: processor.memberId,
      },
      "notifier started",
    );
    const log = eventLog;
    let stopping: Promise<void> | undefined;
    return {
      healthPort: health.port,
      processor,
      stop() {
        stopping ??= (async () => {
          health.setServing(false);
          await processor.stop();
          mailer.close();
          await health.close();
          if (ownsLog) await log.close();
          logger.info({}, "notifier stopped");
        })();
        return stopping;
      },
    };
  } catch (err) {
    mailer.close();
    await health.close();
    if (ownsLog && eventLog) await eventLog.close();
    throw err;
  }
}
