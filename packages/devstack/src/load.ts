import { randomBytes, randomUUID } from "node:crypto";
import { buildPasswordChange, IngestStream } from "@pwsync/agent-link";
import type { RecipientPublicKey } from "@pwsync/crypto";
import { CHANGE_OUTCOME_TYPES, changeIdOfStream, changeStreamId, readEventsByTypeSince, readStreamsEventsByType, type EventLog } from "@pwsync/eventlog";
import type { SandboxUserSpec, Stack } from "./stack.js";

export interface PlannedChange {
  changeId: string;
  user: SandboxUserSpec;
  password: string;
  changedAt: Date;
  agent: string;
}

export interface SentChange extends PlannedChange {
  sentAt: number;
  ackedAt: number;
}

/** A password Entra accepts, different every time. */
export function generatedPassword(): string {
  return `Pw-${randomBytes(9).toString("base64url")}-7a!`;
}

export function planChanges(users: SandboxUserSpec[], count: number, agents: string[], passwords?: Map<string, string[]>): PlannedChange[] {
  const start = Date.now() - count;
  return Array.from({ length: count }, (_, i) => {
    const user = users[i % users.length]!;
    const fromFile = passwords?.get(user.userPrincipalName.split("@")[0]!);
    const password = fromFile?.[Math.floor(i / users.length) % fromFile.length] ?? generatedPassword();
    // changedAt grows with i, so the newest change per user is the one planned last.
    return { changeId: randomUUID(), user, password, changedAt: new Date(start + i), agent: agents[i % agents.length]! };
  });
}

/**
 * Pushes changes exactly as a dc-agent does (sealed, over mTLS, one stream per agent), at up
 * to `ratePerSecond` (steady offered load) or as fast as acks allow.
 */
export async function pushChanges(
  stack: Pick<Stack, "agentEndpoint" | "recipient">,
  planned: PlannedChange[],
  options: { ratePerSecond?: number; streamsPerAgent?: number; onProgress?: (sent: number) => void; sealFirst?: boolean } = {},
): Promise<SentChange[]> {
  const streams = new Map<string, IngestStream[]>();
  const streamFor = (agent: string, i: number) => {
    let list = streams.get(agent);
    if (!list) {
      list = Array.from({ length: options.streamsPerAgent ?? 1 }, () => new IngestStream(stack.agentEndpoint(agent)));
      streams.set(agent, list);
    }
    return list[i % list.length]!;
  };
  const sealOne = (i: number) => {
    const change = planned[i]!;
    return buildPasswordChange(
      stack.recipient as RecipientPublicKey,
      {
        changeId: change.changeId,
        accountName: change.user.userPrincipalName.split("@")[0]!,
        userPrincipalName: change.user.userPrincipalName,
        mail: change.user.mail,
        objectGuid: Buffer.from(change.user.onPremisesImmutableId, "base64"),
        changedAt: change.changedAt,
        domainController: `${change.agent}.contoso.example`,
        agentSequence: BigInt(i),
      },
      Buffer.from(change.password, "utf8"),
    );
  };
  // Benchmarks seal up front: on a real deployment sealing happens on the DCs, not on the
  // machine that runs the server side, so it should not eat the CPU being measured.
  const sealed = options.sealFirst ? planned.map((_, i) => sealOne(i)) : undefined;
  const started = performance.now();
  const sent: Promise<SentChange>[] = [];
  for (let i = 0; i < planned.length; i++) {
    const change = planned[i]!;
    if (options.ratePerSecond) {
      const due = started + (i * 1000) / options.ratePerSecond;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    } else if (i % 500 === 0) {
      await new Promise((r) => setImmediate(r));
    }
    const message = sealed?.[i] ?? sealOne(i);
    const sentAt = Date.now();
    sent.push(
      streamFor(change.agent, i)
        .send(message)
        .then(() => ({ ...change, sentAt, ackedAt: Date.now() })),
    );
    options.onProgress?.(i + 1);
  }
  const result = await Promise.all(sent);
  await Promise.all([...streams.values()].flat().map((s) => s.close()));
  return result;
}

export interface Outcome {
  type: string;
  createdAt: Date;
  data: Record<string, unknown>;
}

/**
 * Late commits: an event's created_at is taken inside its transaction, so one can become
 * visible after others with later times. Each poll re-reads this far back to catch it.
 */
const COMMIT_SKEW_MS = 10_000;

/**
 * Polls the log until every change has a terminal event (or the deadline passes). The first
 * poll asks by stream (changes may have finished long before the call); later polls read only
 * outcomes recorded since the previous poll, by (type, created_at), so the observer's cost
 * follows the outcomes, not the changes still pending: a bench measuring the pipeline must not
 * spend the CPU it measures re-asking thousands of streams every 200 ms.
 */
export async function waitForOutcomes(
  log: EventLog,
  changeIds: Set<string>,
  options: { timeoutMs: number; onProgress?: (done: number) => void },
): Promise<Map<string, Outcome>> {
  const outcomes = new Map<string, Outcome>();
  const record = (event: { streamId: string; type: string; createdAt: Date; data: unknown }) => {
    const changeId = changeIdOfStream(event.streamId);
    if (changeId && changeIds.has(changeId) && !outcomes.has(changeId))
      outcomes.set(changeId, { type: event.type, createdAt: event.createdAt, data: event.data as Record<string, unknown> });
  };
  const deadline = Date.now() + options.timeoutMs;
  // The stack's Postgres runs on this machine: its clock is ours (the skew margin covers the rest).
  let since = new Date();
  const pending = [...changeIds];
  for (let i = 0; i < pending.length; i += 5000) {
    const streams = pending.slice(i, i + 5000).map((id) => changeStreamId(id));
    for (const event of await readStreamsEventsByType(log.db, streams, CHANGE_OUTCOME_TYPES)) record(event);
  }
  options.onProgress?.(outcomes.size);
  while (outcomes.size < changeIds.size && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    const pollStart = new Date();
    for (const event of await readEventsByTypeSince(log.db, CHANGE_OUTCOME_TYPES, new Date(since.getTime() - COMMIT_SKEW_MS))) record(event);
    since = pollStart;
    options.onProgress?.(outcomes.size);
  }
  return outcomes;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
