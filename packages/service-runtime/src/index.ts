import { ConfigError } from "@pwsync/config";
import type { Logger, LoggerOptions } from "@pwsync/log";

export type Stop = () => Promise<void>;

/**
 * The life of one service process: start it, log a status line, stop gracefully on SIGTERM /
 * SIGINT, and turn a bad configuration into a clear message and exit code 2 rather than a
 * stack trace.
 */
export async function runService(
  name: string,
  start: (logger: Logger) => Promise<Stop>,
  createLogger: (o: LoggerOptions) => Logger,
  options: {
    /** Reported on the start line; defaults to npm's package version when run through npm. */
    version?: string;
    /** Another way to be told to stop, besides SIGTERM / SIGINT (e.g. a Windows service wrapper). */
    stopRequests?: (requestStop: (reason: string) => void) => void;
  } = {},
): Promise<void> {
  const logger = createLogger({ service: name });
  process.on("unhandledRejection", (reason) => {
    logger.error({ err: reason instanceof Error ? reason.message : String(reason) }, "unhandled rejection");
  });
  let stop: Stop;
  try {
    stop = await start(logger);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`pwsync ${name}: ${err.message}\n`);
      logger.flush?.();
      process.exit(2);
    }
    logger.fatal({ err: (err as Error).message, stack: (err as Error).stack }, `${name} failed to start`);
    logger.flush?.();
    process.exit(1);
  }
  logger.info({ version: options.version ?? process.env.npm_package_version ?? "dev", node: process.version }, `${name} started`);
  const stopDeadlineMs = stopTimeoutMs();
  let stopping = false;
  const onSignal = (signal: string) => {
    if (stopping) {
      // A second signal: whoever sends it has stopped waiting.
      logger.warn({ signal }, `${name} stopping now (second signal)`);
      logger.flush?.();
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal, deadlineMs: stopDeadlineMs }, `${name} stopping`);
    // Whatever a dependency is doing (Postgres gone, an SMTP server or Graph that never
    // answers), the process ends within its deadline: orchestrators count on it, and all work
    // is safe in the event log, so cutting in-flight calls short loses nothing.
    setTimeout(() => {
      logger.error({ deadlineMs: stopDeadlineMs }, `${name} did not stop within its deadline; exiting`);
      logger.flush?.();
      process.exit(1);
    }, stopDeadlineMs).unref();
    stop().then(
      () => {
        logger.info({}, `${name} stopped`);
        logger.flush?.();
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err: (err as Error).message }, `${name} did not stop cleanly`);
        logger.flush?.();
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));
  options.stopRequests?.((reason) => onSignal(reason));
  exitWhenParentDies(() => onSignal("launcher gone"));
}

/**
 * PWSYNC_STOP_TIMEOUT_SECONDS (default 25): below the grace periods pwsync's compose file (30 s)
 * and Kubernetes manifests (45 s) give, so a service always exits on its own terms before a
 * SIGKILL; long enough for the reset-executor to finish a write in flight on a loaded machine.
 */
function stopTimeoutMs(): number {
  const seconds = Number(process.env.PWSYNC_STOP_TIMEOUT_SECONDS ?? 25);
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 25_000;
}

/**
 * Under the dev launcher (PWSYNC_PARENT_PID set), a service stops when the launcher is gone,
 * even if it was killed with SIGKILL and could not stop its children itself.
 */
export function exitWhenParentDies(onGone: () => void = () => process.exit(0)): void {
  const parent = Number(process.env.PWSYNC_PARENT_PID);
  if (!parent) return;
  const timer = setInterval(() => {
    try {
      process.kill(parent, 0);
    } catch {
      clearInterval(timer);
      onGone();
    }
  }, 1000);
  timer.unref();
}
