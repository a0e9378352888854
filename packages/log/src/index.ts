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
    options.destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
