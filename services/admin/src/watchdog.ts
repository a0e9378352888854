import { appendToStream, lastCaptureByDomainController, listAgentStatus, watchdogStreamStates, WATCHDOG_STREAM_PREFIX, type EventLog } from "@pwsync/eventlog";
import type { Logger } from "@pwsync/log";
import { decodeEvent, newEvent } from "@pwsync/proto";
import type { WatchdogSettings } from "./config.js";
import { alertKey, evaluate, type Alert } from "./watchdog-rules.js";

export interface ActiveAlert extends Alert {
  raisedAt: Date;
}

/** Alerts raised and not cleared, from the watchdog streams of the log. */
export async function activeAlerts(log: EventLog): Promise<ActiveAlert[]> {
  const states = await watchdogStreamStates(log.db);
  return states
    .filter((s) => s.raised)
    .map((s) => {
      const raised = decodeEvent("WatchdogAlertRaised", s.data);
      return { kind: raised.kind as Alert["kind"], subject: raised.subject, detail: raised.detail, raisedAt: s.changedAt };
    });
}

export type WatchdogNotice = (alert: Alert, state: "raised" | "cleared") => Promise<void>;

export interface Watchdog {
  /** One evaluation; returns what changed. Exposed for tests and for an immediate check. */
  check(now?: Date): Promise<{ raised: Alert[]; cleared: Alert[] }>;
  stop(): Promise<void>;
}

/**
 * Periodically compares what should be alerting with what the log says is alerting, and
 * records the difference as WatchdogAlertRaised / WatchdogAlertCleared in stream
 * watchdog-<kind>-<subject>. The append is at the stream's expected version, so with several
 * admin replicas exactly one records (and emails) each transition.
 */
export function startWatchdog(deps: { log: EventLog; logger: Logger; settings: WatchdogSettings; notify?: WatchdogNotice; startedAt?: Date }): Watchdog {
  const watchingSince = deps.startedAt ?? new Date();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;

  async function transition(alert: Alert, version: number, state: "raised" | "cleared"): Promise<boolean> {
    const event = state === "raised" ? newEvent("WatchdogAlertRaised", alert) : newEvent("WatchdogAlertCleared", { kind: alert.kind, subject: alert.subject });
    const appended = await appendToStream(deps.log.db, `${WATCHDOG_STREAM_PREFIX}${alertKey(alert)}`, [{ ...event, metadata: { actor: "admin-watchdog" } }], {
      expectedVersion: version,
    });
    if (!appended.success) return false;
    const log = state === "raised" ? deps.logger.error.bind(deps.logger) : deps.logger.info.bind(deps.logger);
    log({ kind: alert.kind, subject: alert.subject, detail: alert.detail }, state === "raised" ? "watchdog alert raised" : "watchdog alert cleared");
    await deps
      .notify?.(alert, state)
      .catch((err: unknown) => deps.logger.error({ err: (err as Error).message, kind: alert.kind, subject: alert.subject }, "watchdog alert email failed"));
    return true;
  }

  async function check(now = new Date()): Promise<{ raised: Alert[]; cleared: Alert[] }> {
    const [agents, lastCapture, states] = await Promise.all([
      listAgentStatus(deps.log.db),
      lastCaptureByDomainController(deps.log.db),
      watchdogStreamStates(deps.log.db),
    ]);
    const wanted = new Map(evaluate(agents, lastCapture, deps.settings, now, watchingSince).map((a) => [alertKey(a), a]));
    const known = new Map(states.map((s) => [s.streamId.slice(WATCHDOG_STREAM_PREFIX.length), s]));
    const raised: Alert[] = [];
    const cleared: Alert[] = [];
    for (const [key, alert] of wanted) {
      const state = known.get(key);
      if (state?.raised) continue;
      if (await transition(alert, state?.version ?? 0, "raised")) raised.push(alert);
    }
    for (const [key, state] of known) {
      if (!state.raised || wanted.has(key)) continue;
      const was = decodeEvent("WatchdogAlertRaised", state.data);
      const alert = { kind: was.kind as Alert["kind"], subject: was.subject, detail: was.detail };
      if (await transition(alert, state.version, "cleared")) cleared.push(alert);
    }
    return { raised, cleared };
  }

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = check()
        .catch((err: unknown) => deps.logger.warn({ err: (err as Error).message }, "watchdog check failed; will try again"))
        .finally(schedule);
    }, deps.settings.intervalSeconds * 1000);
  };
  schedule();
  return {
    check,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
