import { appendToStream, type EventLog } from "@pwsync/eventlog";
import type { Logger } from "@pwsync/log";
import { newEvent } from "@pwsync/proto";

export const ADMIN_AUDIT_STREAM = "admin-audit";

export interface Denial {
  method: string;
  code: "UNAUTHENTICATED" | "PERMISSION_DENIED";
  subject: string;
  peer: string;
  detail: string;
}

export interface DenialRecorder {
  record(denial: Denial): Promise<void>;
}

/**
 * Records refused admin calls as AdminAccessDenied events in the admin-audit stream (the same
 * append-only log as everything else, visible in Grafana). At most `perMinute` a minute are
 * written one by one; the rest are counted and the count rides on the next record, so a
 * scanner cannot grow the log without bound.
 */
export function denialRecorder(log: EventLog, logger: Logger, perMinute: number, now: () => number = Date.now): DenialRecorder {
  let windowStart = now();
  let inWindow = 0;
  let suppressed = 0;
  return {
    async record(denial) {
      logger.warn({ ...denial }, "admin API call refused");
      if (now() - windowStart >= 60_000) {
        windowStart = now();
        inWindow = 0;
      }
      if (inWindow >= perMinute) {
        suppressed++;
        return;
      }
      inWindow++;
      const suppressedBefore = suppressed;
      suppressed = 0;
      try {
        await appendToStream(
          log.db,
          ADMIN_AUDIT_STREAM,
          [{ ...newEvent("AdminAccessDenied", { ...denial, suppressedBefore }), metadata: { actor: "admin" } }],
          { expectedVersion: "any" },
        );
      } catch (err) {
        suppressed += suppressedBefore + 1;
        logger.error({ err: (err as Error).message }, "could not record an admin API denial");
      }
    },
  };
}
