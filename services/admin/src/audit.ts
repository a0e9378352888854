import { appendToStream, auditBudget, type EventLog } from "@pwsync/eventlog";
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
  const budget = auditBudget<Denial>({
    perMinute,
    now,
    write: async (denial, suppressedBefore) => {
      await appendToStream(log.db, ADMIN_AUDIT_STREAM, [{ ...newEvent("AdminAccessDenied", { ...denial, suppressedBefore }), metadata: { actor: "admin" } }], {
        expectedVersion: "any",
      });
    },
    onWriteError: (err) => logger.error({ err: err.message }, "could not record an admin API denial"),
  });
  return {
    async record(denial) {
      logger.warn({ ...denial }, "admin API call refused");
      await budget.record(denial);
    },
  };
}
