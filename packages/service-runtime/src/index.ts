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
  let stopping = false;
  const onSignal = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, `${name} stopping`);
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
