import pino, { type DestinationStream, type Logger } from "pino";

export type { Logger } from "pino";

/**
 * Field names that must never reach a log line with their value, wherever they appear. The
 * code never logs a password on purpose; this is the second line of defence.
 */
export const REDACTED_PATHS = [
  "password",
  "newPassword",
  "plaintext",
  "secret",
  "clientSecret",
  "privateKey",
  "envelope",
  "sealedPassword",
  "sealed_password",
  "passwordProfile",
  "authorization",
  "access_token",
  "*.password",
  "*.newPassword",
  "*.plaintext",
  "*.secret",
  "*.clientSecret",
  "*.privateKey",
  "*.envelope",
  "*.sealedPassword",
  "*.sealed_password",
  "*.passwordProfile",
  "*.authorization",
  "*.access_token",
  "*.*.password",
  "*.*.passwordProfile",
  "*.*.sealedPassword",
];

export interface LoggerOptions {
  service: string;
  level?: string;
  destination?: DestinationStream;
}

/** JSON lines on stdout (or `destination`), one logger per service, redaction always on. */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level ?? process.env.PWSYNC_LOG_LEVEL ?? "info",
      base: { service: options.service, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? stdoutDestination(),
  );
}

/**
 * stdout for JSON lines, which never holds the process hostage: a reader that stopped reading
 * (a hung or killed launcher, a stuck log shipper) makes writes answer EAGAIN, and a closed one
 * EPIPE. sonic-boom before 5 retried a failed write for ever inside the blocking flush pino runs
 * at exit, so a service could not even exit on SIGTERM (hence the override in package.json).
 * Here a stall of 20 × 100 ms drops the pending lines, and a closed pipe drops them at once:
 * they are lost only where nobody could read them anyway.
 */
function stdoutDestination(): DestinationStream {
  const destination = pino.destination({ fd: 1, sync: false, maxWriteRetries: 20 } as Parameters<typeof pino.destination>[0]);
  destination.on("error", () => {
    // A closed pipe or a stall given up on: nothing can be told to a reader that is not there.
  });
  return destination;
}
