import { randomUUID } from "node:crypto";
import { setTimeout as sleepFor } from "node:timers/promises";
import { sql } from "kysely";
import { decodeEnvelope, unseal, UnsealError, type RecipientKeyPair } from "@pwsync/crypto";
import {
  appendToStream,
  isChangeOutcome,
  loadSealedSecret,
  readByPartitionKey,
  readStream,
  shredSealedSecret,
  startProcessor,
  withFence,
  type EventLog,
  type HandlerContext,
  type Processor,
  type StoredEvent,
  type Writes,
} from "@pwsync/eventlog";
import { classifyGraphError, setPassword, type ClassifiedGraphError, type GraphClient } from "@pwsync/graph";
import type { Logger } from "@pwsync/log";
import { decodeEvent, newEvent, ResetFailureReason } from "@pwsync/proto";
import { recordGraphAttempt, recordOutcome, tracedHandler } from "@pwsync/telemetry";
import type { ExecutorSection } from "./config.js";
import {
  decide,
  foldEvents,
  timing,
  type DecidedEvent,
  type ExecutorEvent,
  type ExecutorState,
  type NewestOfUser,
  type PasswordReading,
  type StoredDecision,
} from "./decider.js";
import { orderFactsOfResolved, type OrderFacts } from "./ordering.js";
import { backoffDelay } from "./rate-limiter.js";
import type { WriteBudget } from "./write-budget.js";

export interface ExecutorDeps {
  log: EventLog;
  graph: GraphClient;
  logger: Logger;
  keys: ReadonlyMap<string, RecipientKeyPair>;
  config: ExecutorSection;
  limiter: WriteBudget;
  requestTimeoutMs: number;
  /** Aborted on shutdown so a long Retry-After wait does not hold the process. */
  signal: AbortSignal;
  /**
   * Keep the sealed password after ResetFailed so an admin can retry the change; the secret
   * reaper shreds it when the retry window closes. Absent: shred at once.
   */
  retainSecretOnFailure?: boolean;
}

/** What the handling of one change carries between its I/O steps. */
interface Handling {
  streamId: string;
  /** The stream's version the next append expects. */
  version: number;
  state: ExecutorState;
  metadata: StoredEvent["metadata"];
}

/** Stored events as the decider folds them; the others do not matter to it. */
function toExecutorEvent(event: StoredEvent): ExecutorEvent | undefined {
  switch (event.type) {
    case "ChangeCaptured":
      return { type: "ChangeCaptured", data: decodeEvent("ChangeCaptured", event.data) };
    case "UserResolved":
      return { type: "UserResolved", data: decodeEvent("UserResolved", event.data), recordedAt: event.createdAt };
    case "RetryScheduled":
      return { type: "RetryScheduled", data: decodeEvent("RetryScheduled", event.data) };
    case "RetryRequested":
      return { type: event.type };
    default:
      return isChangeOutcome(event.type) ? { type: event.type } : undefined;
  }
}

/** The decided events of a terminal outcome, the shredding of the sealed password (when decided) and the user's newest change, in one transaction. */
function commitOutcome(handling: Handling, decided: DecidedEvent[], answeredAttempt?: string): Writes {
  const stored = decided.filter(isStored);
  const outcome = stored.find((e) => e.type !== "SecretShredded" && e.type !== "RetryScheduled");
  if (outcome && "timing" in outcome.data) recordOutcome(outcome.type, { ...outcome.data.timing, attempts: outcome.data.attempts });
  else if (outcome) recordOutcome(outcome.type, { ...timing(handling.state, new Date()), attempts: handling.state.attempts });
  const change = handling.state.change!;
  return async (trx) => {
    if (answeredAttempt) await trx.deleteFrom("graph_write_attempts").where("attempt_id", "=", answeredAttempt).execute();
    const appended = await appendToStream(
      trx,
      handling.streamId,
      stored.map((e) => ({ ...newEvent(e.type, e.data as never), metadata: { ...handling.metadata, actor: "reset-executor" } })),
      { expectedVersion: handling.version },
    );
    if (!appended.success) throw new Error(`change ${change.changeId} moved on while it was being reset (version ${handling.version} expected)`);
    if (stored.some((e) => e.type === "SecretShredded")) await shredSealedSecret(trx, change.changeId);
    // The newest change seen for a user, whatever its outcome: an older one arriving later
    // must not put an older password in place.
    await trx
      .insertInto("executor_user_state")
      .values({ entra_user_id: change.entraUserId, change_id: change.changeId, changed_at: change.changedAt, order_key: change.orderKey })
      .onConflict((oc) =>
        oc
          .column("entra_user_id")
          .doUpdateSet((eb) => ({
            change_id: eb.ref("excluded.change_id"),
            changed_at: eb.ref("excluded.changed_at"),
            order_key: eb.ref("excluded.order_key"),
          }))
          // bytea compares bytewise, as ordering.ts does; rows from before the key existed
          // fall back to the time they were ordered by then.
          .where((eb) =>
            eb.or([
              eb("executor_user_state.order_key", "<=", change.orderKey),
              eb.and([eb("executor_user_state.order_key", "is", null), eb("executor_user_state.changed_at", "<=", change.changedAt)]),
            ]),
          ),
      )
      .execute();
  };
}

const STORED_TYPES = new Set(["PasswordSet", "ResetFailed", "Superseded", "SecretShredded", "RetryScheduled"]);
function isStored(event: DecidedEvent): event is StoredDecision {
  return STORED_TYPES.has(event.type);
}

/** The user's newest finished change (executor_user_state). */
async function newestOfUser(deps: ExecutorDeps, entraUserId: string): Promise<NewestOfUser | undefined> {
  const row = await deps.log.db
    .selectFrom("executor_user_state")
    .select(["change_id", "changed_at", "order_key"])
    .where("entra_user_id", "=", entraUserId)
    .executeTakeFirst();
  return row ? { changeId: row.change_id, orderKey: row.order_key, changedAt: row.changed_at } : undefined;
}

/** Changes of the user that arrived behind this one (a retry may be overtaken by them). */
async function queuedBehind(deps: ExecutorDeps, partitionKey: string, after: bigint): Promise<OrderFacts[]> {
  const later = await readByPartitionKey(deps.log.db, partitionKey, ["UserResolved"], after);
  return later.map((event) => orderFactsOfResolved(decodeEvent("UserResolved", event.data)));
}

/**
 * Fencing, right before a PATCH: proves this worker still owns the user's partition and records
 * the write as possibly in flight until it expires. A password write of another change for the
 * user that may still be in flight (a killed or cut-off owner's, or one of ours that got no
 * answer) must land before ours, so we wait it out instead: an older password can then never
 * land after a newer one. One of the same change carries the same password and is harmless.
 */
async function beginWriteAttempt(
  deps: ExecutorDeps,
  context: HandlerContext,
  entraUserId: string,
  changeId: string,
): Promise<{ attemptId: string } | { waitMs: number }> {
  const lifetimeMs = deps.config.fencing.maxSendDelayMs + deps.requestTimeoutMs + deps.config.fencing.graceMs;
  return withFence(deps.log.db, context.fence, async (trx) => {
    await trx.deleteFrom("graph_write_attempts").where("entra_user_id", "=", entraUserId).where("expires_at", "<=", sql<Date>`now()`).execute();
    const pending = await sql<{ wait_ms: number | null }>`
      SELECT ceil(extract(epoch FROM max(expires_at) - now()) * 1000)::int AS wait_ms
        FROM graph_write_attempts WHERE entra_user_id = ${entraUserId} AND change_id <> ${changeId}`.execute(trx);
    const waitMs = pending.rows[0]?.wait_ms ?? 0;
    if (waitMs > 0) return { waitMs };
    const attemptId = randomUUID();
    await sql`INSERT INTO graph_write_attempts (attempt_id, entra_user_id, change_id, expires_at)
              VALUES (${attemptId}, ${entraUserId}, ${changeId}, now() + make_interval(secs => ${lifetimeMs / 1000}))`.execute(trx);
    return { attemptId };
  });
}

/** The request timed out by our own deadline: no answer, so the outcome is unknown. */
class NoAnswer extends Error {
  readonly code = "ETIMEDOUT";
}

/**
 * The outcome commits as soon as it is known, not with the batch's checkpoint: a finished write
 * must not wait behind a slower sibling in the batch (a kill would lose it and the next owner
 * would write again), and a success must count among the attempts as soon as a failure does.
 * The stream's expected version keeps it to one outcome per change.
 */
export async function handleUserResolved(deps: ExecutorDeps, event: StoredEvent, context: HandlerContext): Promise<void> {
  const writes = await resetPassword(deps, event, context);
  if (writes) await deps.log.db.transaction().execute(writes);
}

async function resetPassword(deps: ExecutorDeps, event: StoredEvent, context: HandlerContext): Promise<Writes | void> {
  // Shutdown or a lost partition: either ends every wait.
  const stop = AbortSignal.any([deps.signal, context.signal]);
  const stream = await readStream(deps.log.db, event.streamId);
  const handling: Handling = {
    streamId: event.streamId,
    version: stream.length,
    state: foldEvents(stream.map(toExecutorEvent).filter((e) => e !== undefined)),
    metadata: event.metadata,
  };
  if (handling.state.finished) return;
  const change = handling.state.change!;
  const logContext = { changeId: change.changeId, entraUserId: change.entraUserId, upn: change.userPrincipalName };
  const fold = (...events: ExecutorEvent[]) => (handling.state = foldEvents(events, handling.state));
  const conclude = (decided: DecidedEvent[], answeredAttempt?: string): Writes => {
    logOutcome(deps, logContext, decided);
    return commitOutcome(handling, decided, answeredAttempt);
  };

  const newest = await newestOfUser(deps, change.entraUserId);
  const secret = await loadSealedSecret(deps.log.db, change.changeId);
  let password: Buffer | undefined;
  let reading: PasswordReading = { kind: "missing" };
  if (secret) {
    try {
      password = unseal(deps.keys, change.changeId, decodeEnvelope(secret.envelope));
      // A JS string cannot be wiped; it lives only for the Graph request and is left to the GC.
      // The Buffer it came from is zeroed below.
      reading = { kind: "opened", text: password.toString("utf8") };
    } catch (err) {
      reading = { kind: "unreadable", detail: err instanceof UnsealError ? err.message : `the sealed password is unreadable: ${(err as Error).message}` };
    }
  }
  try {
    const started = decide(
      {
        type: "StartReset",
        newestOfUser: newest,
        password: reading,
        minPasswordLength: deps.config.minPasswordLength,
        retainSecretOnFailure: deps.retainSecretOnFailure === true,
        now: new Date(),
      },
      handling.state,
    );
    if (started.length > 0) return conclude(started);
    const text = reading.kind === "opened" ? reading.text : "";
    for (;;) {
      if (handling.state.attempts > 0) {
        const recheck = decide(
          {
            type: "CheckBeforeRetry",
            newestOfUser: await newestOfUser(deps, change.entraUserId),
            queued: await queuedBehind(deps, event.partitionKey, event.globalPosition),
          },
          handling.state,
        );
        if (recheck.length > 0) return conclude(recheck);
      }
      if (deps.config.rateLimit.enabled) fold({ type: "Waited", ms: await deps.limiter.acquire((ms) => sleepFor(ms, undefined, { signal: stop })) });
      const claimedAt = performance.now();
      // Nothing is sent after this deadline, so the attempt's recorded lifetime bounds it.
      const deadline = AbortSignal.timeout(deps.config.fencing.maxSendDelayMs + deps.requestTimeoutMs);
      const claim = await beginWriteAttempt(deps, context, change.entraUserId, change.changeId);
      const [cleared] = decide(
        {
          type: "ClaimWrite",
          otherWriteInFlightMs: "waitMs" in claim ? claim.waitMs : 0,
          sinceClaimMs: performance.now() - claimedAt,
          maxSendDelayMs: deps.config.fencing.maxSendDelayMs,
        },
        handling.state,
      );
      if (cleared?.type === "InFlightWriteAwaited") {
        deps.logger.info({ ...logContext, waitMs: cleared.waitMs }, "another change's password write for this user may still be in flight; waiting it out");
        await sleepFor(cleared.waitMs, undefined, { signal: stop });
        fold({ type: "Waited", ms: cleared.waitMs });
        continue;
      }
      if (cleared?.type !== "PasswordWriteCleared" || !("attemptId" in claim)) continue; // stalled after the check: check again
      const sentAt = performance.now();
      let error: ClassifiedGraphError | undefined;
      try {
        await setPassword(deps.graph, change.entraUserId, text, {
          forceChangePasswordNextSignIn: deps.config.forceChangePasswordNextSignIn,
          signal: AbortSignal.any([deadline, context.signal]),
        });
        recordGraphAttempt("set_password", performance.now() - sentAt, 204);
      } catch (err) {
        if (context.signal.aborted) throw err; // the partition is gone; its new owner takes over
        error = deadline.aborted ? classifyGraphError(new NoAnswer(`no answer from Graph within ${deps.requestTimeoutMs} ms`)) : classifyGraphError(err);
        recordGraphAttempt("set_password", performance.now() - sentAt, error.httpStatus, error.kind);
      }
      fold({ type: "Worked", ms: performance.now() - sentAt });
      const answered = decide(
        {
          type: "RecordAnswer",
          error,
          retryLimit: deps.config.retryLimit,
          backoffMs: (attempt) => backoffDelay(attempt, deps.config.backoff.baseMs, deps.config.backoff.maxMs),
          retainSecretOnFailure: deps.retainSecretOnFailure === true,
          now: new Date(),
        },
        handling.state,
      );
      // httpStatus 0: no answer, so the write may still land; its attempt stays until it expires.
      const attemptAnswered = !error || error.httpStatus > 0;
      const retry = answered.find((e) => e.type === "RetryScheduled");
      if (!retry) return conclude(answered, attemptAnswered ? claim.attemptId : undefined);
      if (attemptAnswered) await deps.log.db.deleteFrom("graph_write_attempts").where("attempt_id", "=", claim.attemptId).execute();
      const pause = answered.find((e) => e.type === "WriteBudgetPaused");
      if (pause) await deps.limiter.pauseFor(pause.ms);
      const appended = await appendToStream(
        deps.log.db,
        handling.streamId,
        [{ ...newEvent("RetryScheduled", retry.data), metadata: { ...handling.metadata, actor: "reset-executor" } }],
        { expectedVersion: handling.version },
      );
      if (!appended.success) throw new Error(`change ${change.changeId} moved on while it was being retried`);
      handling.version = appended.nextVersion;
      fold(retry);
      deps.logger.warn(
        {
          ...logContext,
          attempt: retry.data.attempt,
          kind: error!.kind,
          httpStatus: retry.data.httpStatus,
          code: retry.data.graphErrorCode,
          delayMs: retry.data.delayMs,
          fromRetryAfter: retry.data.fromRetryAfter,
        },
        "password reset will be retried",
      );
      await sleepFor(retry.data.delayMs, undefined, { signal: stop });
    }
  } finally {
    password?.fill(0);
  }
}

function logOutcome(deps: ExecutorDeps, logContext: object, decided: DecidedEvent[]): void {
  for (const event of decided) {
    if (event.type === "Superseded")
      deps.logger.info({ ...logContext, supersededBy: event.data.supersededByChangeId }, "older change superseded by a newer one for the same user");
    else if (event.type === "PasswordSet") deps.logger.info({ ...logContext, attempts: event.data.attempts, ...event.data.timing }, "password set in Entra ID");
    else if (event.type === "ResetFailed")
      deps.logger.warn(
        { ...logContext, reason: ResetFailureReason[event.data.reason], detail: event.data.detail, attempts: event.data.attempts },
        "password reset failed",
      );
  }
}

export function startExecutor(deps: ExecutorDeps): Promise<Processor> {
  return startProcessor(deps.log, {
    group: "reset-executor",
    eventTypes: ["UserResolved"],
    // One user's changes still run one after the other (partition key = user).
    concurrency: 16,
    handle: tracedHandler("reset-executor", (event, context: HandlerContext) => handleUserResolved(deps, event, context)),
    logger: deps.logger,
  });
}
