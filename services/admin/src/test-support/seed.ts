import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { appendToStream, storeSealedSecret, type EventLog } from "@pwsync/eventlog";
import { newEvent, ResetFailureReason, ResolutionFailureReason } from "@pwsync/proto";
import { randomBytes, randomUUID } from "node:crypto";

// Realistic event-log contents for admin and dashboard tests, written the way the services
// write them. Sealed "secrets" here are random bytes: no password exists anywhere in a fixture.

export const traceparent = () => `00-${randomBytes(16).toString("hex")}-${randomBytes(8).toString("hex")}-01`;

async function append(
  log: EventLog,
  streamId: string,
  events: Array<{ type: string; data: unknown; metadata: Record<string, unknown> }>,
  partitionKey?: string,
) {
  const { nextVersion } = (await appendToStream(log.db, streamId, events, { expectedVersion: "any", ...(partitionKey ? { partitionKey } : {}) })) as {
    nextVersion: number;
  };
  return nextVersion;
}

export interface SeededChange {
  changeId: string;
  account: string;
  traceparent: string;
}

export async function captured(log: EventLog, account: string, opts: { agentId?: string; dc?: string; withSecret?: boolean } = {}): Promise<SeededChange> {
  const changeId = randomUUID();
  const tp = traceparent();
  const now = new Date();
  await append(log, `change-${changeId}`, [
    {
      ...newEvent("ChangeCaptured", {
        changeId,
        agentId: opts.agentId ?? "dc01-agent",
        domainController: opts.dc ?? "dc01.corp.example",
        accountName: account,
        userPrincipalName: `${account}@contoso.example`,
        mail: `${account}@contoso.example`,
        immutableId: randomBytes(16).toString("base64"),
        changedAt: timestampFromDate(now),
        receivedAt: timestampFromDate(now),
        keyId: "0123456789abcdef",
        agentSequence: 1n,
      }),
      metadata: { traceparent: tp, actor: "ingest", agentId: opts.agentId ?? "dc01-agent" },
    },
  ]);
  if (opts.withSecret ?? true) await storeSealedSecret(log.db, changeId, "0123456789abcdef", randomBytes(96));
  return { changeId, account, traceparent: tp };
}

const meta = (c: SeededChange, actor: string) => ({ traceparent: c.traceparent, actor });

export async function resolved(log: EventLog, c: SeededChange, entraUserId = `u-${c.account}`): Promise<void> {
  await append(
    log,
    `change-${c.changeId}`,
    [
      {
        ...newEvent("UserResolved", { changeId: c.changeId, entraUserId, entraUserPrincipalName: `${c.account}@contoso.example` }),
        metadata: meta(c, "resolver"),
      },
    ],
    `user-${entraUserId}`,
  );
}

export async function passwordSet(log: EventLog, c: SeededChange): Promise<void> {
  await resolved(log, c);
  await append(log, `change-${c.changeId}`, [
    {
      ...newEvent("RetryScheduled", {
        changeId: c.changeId,
        attempt: 1,
        httpStatus: 429,
        graphErrorCode: "TooManyRequests",
        delayMs: 1200,
        fromRetryAfter: true,
      }),
      metadata: meta(c, "reset-executor"),
    },
    {
      ...newEvent("PasswordSet", { changeId: c.changeId, entraUserId: `u-${c.account}`, attempts: 2, timing: { totalMs: 2400, workMs: 310, waitMs: 1900 } }),
      metadata: meta(c, "reset-executor"),
    },
    { ...newEvent("SecretShredded", { changeId: c.changeId }), metadata: meta(c, "reset-executor") },
  ]);
  await log.db.deleteFrom("sealed_secrets").where("change_id", "=", c.changeId).execute();
}

/** Failed at resolution, sealed password kept (the retry window). */
export async function resolutionFailed(log: EventLog, c: SeededChange): Promise<void> {
  await append(log, `change-${c.changeId}`, [
    {
      ...newEvent("ResolutionFailed", { changeId: c.changeId, reason: ResolutionFailureReason.NOT_FOUND, detail: `no Entra ID user for account ${c.account}` }),
      metadata: meta(c, "resolver"),
    },
  ]);
}

/** Failed at reset and shredded: no longer retryable. */
export async function resetFailedShredded(log: EventLog, c: SeededChange): Promise<void> {
  await resolved(log, c);
  await append(log, `change-${c.changeId}`, [
    {
      ...newEvent("ResetFailed", {
        changeId: c.changeId,
        entraUserId: `u-${c.account}`,
        reason: ResetFailureReason.COMPLEXITY,
        detail: "not complex enough",
        httpStatus: 400,
        attempts: 1,
        timing: { totalMs: 800, workMs: 200, waitMs: 10 },
      }),
      metadata: meta(c, "reset-executor"),
    },
    { ...newEvent("SecretShredded", { changeId: c.changeId }), metadata: meta(c, "reset-executor") },
    {
      ...newEvent("NotificationSent", {
        changeId: c.changeId,
        role: 1,
        recipient: "helpdesk@contoso.example",
        smtpMessageId: "<m1@x>",
        aboutEventType: "ResetFailed",
      }),
      metadata: meta(c, "notifier"),
    },
  ]);
  await log.db.deleteFrom("sealed_secrets").where("change_id", "=", c.changeId).execute();
}

export async function agentHeartbeat(
  log: EventLog,
  agentId: string,
  dc: string,
  overrides: Partial<{ filterLoaded: boolean; queueDepth: number; oldestAge: number; at: Date; serverInUse: string }> = {},
): Promise<void> {
  const row = {
    agent_id: agentId,
    domain_controller: dc,
    agent_version: "1.2.3",
    filter_loaded: overrides.filterLoaded ?? true,
    queue_depth: String(overrides.queueDepth ?? 0),
    oldest_queued_age_seconds: String(overrides.oldestAge ?? 0),
    last_change_seen_at: new Date(),
    last_heartbeat_at: overrides.at ?? new Date(),
    server_in_use: overrides.serverInUse ?? "primary",
  };
  await log.db
    .insertInto("agent_status")
    .values(row)
    .onConflict((oc) => oc.column("agent_id").doUpdateSet(row))
    .execute();
}

export async function consumerCheckpoint(log: EventLog, group: string): Promise<void> {
  await log.db
    .insertInto("consumer_checkpoints")
    .values({ group_name: group, partition: 0, transaction_id: "0", global_position: "0" })
    .onConflict((oc) => oc.doNothing())
    .execute();
  await log.db
    .insertInto("consumer_members")
    .values({ group_name: group, member_id: "m1", heartbeat_at: new Date() })
    .onConflict((oc) => oc.doNothing())
    .execute();
}
