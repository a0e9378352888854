import { Writable } from "node:stream";
import { createLogger, type Logger } from "@pwsync/log";

/** A real @pwsync/log logger whose JSON lines are kept for assertions. */
export function capturingLogger(service = "dc-agent"): { logger: Logger; lines: string[]; records(): Record<string, unknown>[] } {
  const lines: string[] = [];
  const logger = createLogger({
    service,
    level: "debug",
    destination: new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    }),
  });
  return { logger, lines, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}
