import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { appendToStream, readStream, storeSealedSecret, type EventLog } from "@pwsync/eventlog";
import { newEvent } from "@pwsync/proto";
import { contextFromMetadata, setSafeAttributes, traceMetadata } from "@pwsync/telemetry";
import { SpanKind, SpanStatusCode, trace, type Span } from "@opentelemetry/api";
import type { ValidChange } from "./validate.js";

export interface ChangeToCommit {
  change: ValidChange;
  sealedEnvelope: Uint8Array;
  agentId: string;
  receivedAt: Date;
}

export type CommitOutcome = { changeId: string; status: "committed" | "duplicate"; globalPosition: bigint };

export const streamIdOf = (changeId: string) => `change-${changeId}`;

/**
 * Commits a batch of changes in one transaction: each becomes a new stream whose first event is
 * ChangeCaptured, and its sealed password goes to sealed_secrets in the same transaction. A
 * change id seen before is a re-send after a lost ack: nothing is written for it, and it is
 * reported as a duplicate with its original position.
 */
export async function commitChanges(log: EventLog, batch: ChangeToCommit[]): Promise<CommitOutcome[]> {
  // One span per change, continuing the agent's trace; the events carry the ingest span's
  // context so every consumer's span hangs below it.
  const spans = new Map<string, Span>();
  for (const item of batch) {
    const parent = contextFromMetadata(item.change.traceparent ? { traceparent: item.change.traceparent } : undefined);
    const span = trace.getTracer("pwsync").startSpan("ingest commit", { kind: SpanKind.SERVER }, parent);
    setSafeAttributes(span, { "pwsync.change_id": item.change.changeId, "pwsync.agent_id": item.agentId, "pwsync.account": item.change.accountName });
    spans.set(item.change.changeId, span);
  }
  try {
    const outcomes = await commitInTransaction(log, batch, spans);
    for (const outcome of outcomes) spans.get(outcome.changeId)?.setAttribute("pwsync.ack", outcome.status);
    return outcomes;
  } catch (err) {
    for (const span of spans.values()) span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
    throw err;
  } finally {
    for (const span of spans.values()) span.end();
  }
}

function traceparentFor(change: ValidChange, span: Span | undefined): string | undefined {
  if (span && span.spanContext().traceFlags & 1) return traceMetadata(span).traceparent;
  return change.traceparent || undefined;
}

async function commitInTransaction(log: EventLog, batch: ChangeToCommit[], spans: Map<string, Span>): Promise<CommitOutcome[]> {
  return log.db.transaction().execute(async (trx) => {
    const outcomes: CommitOutcome[] = [];
    for (const item of batch) {
      const { change } = item;
      const streamId = streamIdOf(change.changeId);
      const captured = newEvent("ChangeCaptured", {
        changeId: change.changeId,
        agentId: item.agentId,
        domainController: change.domainController,
        accountName: change.accountName,
        userPrincipalName: change.userPrincipalName,
        mail: change.mail,
        immutableId: change.immutableId,
        changedAt: timestampFromDate(change.changedAt),
        receivedAt: timestampFromDate(item.receivedAt),
        keyId: change.keyId,
        agentSequence: change.agentSequence,
        ...(change.capturedAt ? { capturedAt: change.capturedAt } : {}),
        captureSequence: change.captureSequence,
      });
      const result = await appendToStream(
        trx,
        streamId,
        [{ ...captured, metadata: { actor: "ingest", agentId: item.agentId, ...withTraceparent(traceparentFor(change, spans.get(change.changeId))) } }],
        { expectedVersion: "no_stream" },
      );
      if (result.success) {
        await storeSealedSecret(trx, change.changeId, change.keyId, item.sealedEnvelope);
        outcomes.push({ changeId: change.changeId, status: "committed", globalPosition: result.globalPositions[0]! });
      } else {
        const [first] = await readStream(trx, streamId);
        outcomes.push({ changeId: change.changeId, status: "duplicate", globalPosition: first?.globalPosition ?? 0n });
      }
    }
    return outcomes;
  });
}

function withTraceparent(traceparent: string | undefined): { traceparent?: string } {
  return traceparent ? { traceparent } : {};
}
