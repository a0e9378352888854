import { appendToStream, type EventLog } from "@pwsync/eventlog";
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
  let windowStart = now();
  let inWindow = 0;
  let suppressed = 0;
  return {
    async record(denial) {
      logger.warn({ ...denial }, "refused an agent call");
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
          INGEST_AUDIT_STREAM,
          [{ ...newEvent("AgentAccessDenied", { ...denial, suppressedBefore }), metadata: { actor: "ingest" } }],
          {
            expectedVersion: "any",
          },
        );
      } catch (err) {
        suppressed += suppressedBefore + 1;
        logger.error({ err: (err as Error).message }, "could not record an agent call denial");
      }
    },
  };
}
