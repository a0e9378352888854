import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { appendToStreams, changeStreamId, readFirstEvents, storeSealedSecrets, type EventLog, type StreamAppend } from "@pwsync/eventlog";
import { newEvent } from "@pwsync/proto";
import { contextFromMetadata, setSafeAttributes, traceMetadata } from "@pwsync/telemetry";
import { SpanKind, SpanStatusCode, trace, type Span } from "@opentelemetry/api";
import { ChangeRefusalReason } from "@pwsync/proto";
import type { AgentIdentity } from "./identity.js";
import type { ValidChange } from "./validate.js";

export interface ChangeToCommit {
  change: ValidChange;
  sealedEnvelope: Uint8Array;
  agent: Pick<AgentIdentity, "agentId" | "fingerprint256">;
  /** Domains the agent may touch, stamped on ChangeCaptured for the resolver's check. */
  scope: readonly string[];
  receivedAt: Date;
}

/** A change ingest refuses for good but records (ChangeRefused); its password is not kept. */
export interface RefusalToCommit {
  change: ValidChange;
  agent: Pick<AgentIdentity, "agentId">;
  reason: "NO_SCOPE" | "OUT_OF_SCOPE";
  detail: string;
}

export type CommitOutcome = { changeId: string; status: "committed" | "duplicate" | "refused"; globalPosition: bigint };

export const streamIdOf = changeStreamId;

/**
 * Commits a batch of changes in one transaction: each becomes a new stream whose first event is
 * ChangeCaptured, and its sealed password goes to sealed_secrets in the same transaction. A
 * change id seen before is a re-send after a lost ack: nothing is written for it, and it is
 * reported as a duplicate with its original position.
 */
export async function commitChanges(log: EventLog, batch: ChangeToCommit[], refusals: RefusalToCommit[] = []): Promise<CommitOutcome[]> {
  // One span per change, continuing the agent's trace; the events carry the ingest span's
  // context so every consumer's span hangs below it.
  const spans = new Map<string, Span>();
  for (const item of batch) {
    const parent = contextFromMetadata(item.change.traceparent ? { traceparent: item.change.traceparent } : undefined);
    const span = trace.getTracer("pwsync").startSpan("ingest commit", { kind: SpanKind.SERVER }, parent);
    setSafeAttributes(span, { "pwsync.change_id": item.change.changeId, "pwsync.agent_id": item.agent.agentId, "pwsync.account": item.change.accountName });
    spans.set(item.change.changeId, span);
  }
  try {
    const outcomes = await commitInTransaction(log, batch, refusals, spans);
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

async function commitInTransaction(log: EventLog, batch: ChangeToCommit[], refusals: RefusalToCommit[], spans: Map<string, Span>): Promise<CommitOutcome[]> {
  // The whole group commit is three statements however many changes it holds: every stream's
  // first event in one multi-stream append, the sealed passwords of the new ones in one insert,
  // and a look at the first event of any re-sent change.
  const appends: StreamAppend[] = [
    ...refusals.map(({ change, agent, reason, detail }) => ({
      streamId: streamIdOf(change.changeId),
      events: [
        {
          ...newEvent("ChangeRefused", {
            changeId: change.changeId,
            agentId: agent.agentId,
            domainController: agent.agentId,
            accountName: change.accountName,
            userPrincipalName: change.userPrincipalName,
            mail: change.mail,
            reason: reason === "NO_SCOPE" ? ChangeRefusalReason.NO_SCOPE : ChangeRefusalReason.OUT_OF_SCOPE,
            detail,
          }),
          metadata: { actor: "ingest", agentId: agent.agentId, ...withTraceparent(change.traceparent || undefined) },
        },
      ],
      expectedVersion: "no_stream" as const,
    })),
    ...batch.map((item) => ({
      streamId: streamIdOf(item.change.changeId),
      events: [
        {
          ...capturedEvent(item),
          metadata: { actor: "ingest", agentId: item.agent.agentId, ...withTraceparent(traceparentFor(item.change, spans.get(item.change.changeId))) },
        },
      ],
      expectedVersion: "no_stream" as const,
    })),
  ];
  return log.db.transaction().execute(async (trx) => {
    // The same change twice in one group commit: the later append conflicts, a re-send of the first.
    const results = await appendToStreams(trx, appends);
    await storeSealedSecrets(
      trx,
      batch
        .filter((_, i) => results[refusals.length + i]!.success)
        .map((item) => ({ changeId: item.change.changeId, keyId: item.change.keyId, envelope: item.sealedEnvelope })),
    );
    // A re-send: answer what was decided the first time (the scope may have changed since).
    const resent = appends.filter((_, i) => !results[i]!.success).map((append) => append.streamId);
    const firstEvents = new Map((await readFirstEvents(trx, resent)).map((e) => [e.streamId, e]));
    return [...refusals.map((item) => item.change), ...batch.map((item) => item.change)].map((change, i): CommitOutcome => {
      const result = results[i]!;
      if (result.success)
        return { changeId: change.changeId, status: i < refusals.length ? "refused" : "committed", globalPosition: result.globalPositions[0]! };
      const first = firstEvents.get(appends[i]!.streamId);
      return { changeId: change.changeId, status: first?.type === "ChangeCaptured" ? "duplicate" : "refused", globalPosition: first?.globalPosition ?? 0n };
    });
  });
}

function capturedEvent(item: ChangeToCommit) {
  const { change } = item;
  return newEvent("ChangeCaptured", {
    changeId: change.changeId,
    agentId: item.agent.agentId,
    // The DC is the one the certificate names; a message cannot claim another.
    domainController: item.agent.agentId,
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
    scopeUpnSuffixes: [...item.scope],
    agentCertificateFingerprint: item.agent.fingerprint256,
  });
}

function withTraceparent(traceparent: string | undefined): { traceparent?: string } {
  return traceparent ? { traceparent } : {};
}
