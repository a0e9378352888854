import { appendToStream, auditBudget, type EventLog } from "@pwsync/eventlog";
import type { Logger } from "@pwsync/log";
import { newEvent } from "@pwsync/proto";

export const INGEST_AUDIT_STREAM = "ingest-audit";

export interface AgentDenial {
  method: string;
  code: "UNAUTHENTICATED" | "PERMISSION_DENIED";
  subject: string;
  peer: string;
  detail: string;
  certificateFingerprint: string;
}

export interface AgentDenialRecorder {
  record(denial: AgentDenial): Promise<void>;
}

/**
 * Records refused agent calls as AgentAccessDenied events in the ingest-audit stream. At most
 * `perMinute` a minute are written one by one; the rest are counted and the count rides on the
 * next record, so a caller without a certificate cannot grow the log without bound.
 */
export function agentDenialRecorder(log: EventLog, logger: Logger, perMinute = 60, now: () => number = Date.now): AgentDenialRecorder {
  const budget = auditBudget<AgentDenial>({
    perMinute,
    now,
    write: async (denial, suppressedBefore) => {
      await appendToStream(
        log.db,
        INGEST_AUDIT_STREAM,
        [{ ...newEvent("AgentAccessDenied", { ...denial, suppressedBefore }), metadata: { actor: "ingest" } }],
        {
          expectedVersion: "any",
        },
      );
    },
    onWriteError: (err) => logger.error({ err: err.message }, "could not record an agent call denial"),
  });
  return {
    async record(denial) {
      logger.warn({ ...denial }, "refused an agent call");
      await budget.record(denial);
    },
  };
}
