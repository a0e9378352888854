import { randomUUID } from "node:crypto";
import { setTimeout as sleepFor } from "node:timers/promises";
import { sql } from "kysely";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { decodeEnvelope, unseal, UnsealError, type RecipientKeyPair } from "@pwsync/crypto";
import {
  appendToStream,
  loadSealedSecret,
  readByPartitionKey,
  readStream,
  shredSealedSecret,
  startProcessor,
  withFence,
  type EventLog,
  type HandlerContext,
  type NewEvent,
  type Processor,
  type StoredEvent,
  type Writes,
} from "@pwsync/eventlog";
import { classifyGraphError, setPassword, type ClassifiedGraphError, type GraphClient } from "@pwsync/graph";
import type { Logger } from "@pwsync/log";
import { decodeEvent, newEvent, ResetFailureReason, type EventPayload } from "@pwsync/proto";
import { recordGraphAttempt, recordOutcome, tracedHandler } from "@pwsync/telemetry";
import type { ExecutorSection } from "./config.js";
import { decideAfterGraphError } from "./decide.js";
import { checkEntraPasswordRules } from "./password-rules.js";
import { orderFactsOfResolved, orderKey, supersededBy } from "./ordering.js";
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

export const TERMINAL_TYPES = ["PasswordSet", "ResetFailed", "Superseded", "ResolutionFailed"] as const;

interface Progress {
  changeId: string;
  streamId: string;
  version: number;
  attempts: number;
  workMs: number;
  waitMs: number;
  receivedAt: Date;
  metadata: StoredEvent["metadata"];
}

function timing(progress: Progress) {
  return { totalMs: Math.max(0, Date.now() - progress.receivedAt.getTime()), workMs: Math.round(progress.workMs), waitMs: Math.round(progress.waitMs) };
}

/** The terminal events plus the shredding of the sealed password (unless kept), in one transaction. */
interface UserState {
  entraUserId: string;
  changedAt: Date;
  /** ordering.ts: (capture time, DC, capture sequence, change id). */
  orderKey: Buffer;
}

function terminal(progress: Progress, event: NewEvent, userState?: UserState, keepSecret = false, answeredAttempt?: string): Writes {
  recordOutcome(event.type, { ...timing(progress), attempts: progress.attempts });
  return async (trx) => {
    if (answeredAttempt) await trx.deleteFrom("graph_write_attempts").where("attempt_id", "=", answeredAttempt).execute();
    const appended = await appendToStream(
      trx,
      progress.streamId,
      [
        { ...event, metadata: { ...progress.metadata, actor: "reset-executor" } },
        ...(keepSecret
          ? []
          : [{ ...newEvent("SecretShredded", { changeId: progress.changeId }), metadata: { ...progress.metadata, actor: "reset-executor" } }]),
      ],
      { expectedVersion: progress.version },
    );
    if (!appended.success) throw new Error(`change ${progress.changeId} moved on while it was being reset (version ${progress.version} expected)`);
    if (!keepSecret) await shredSealedSecret(trx, progress.changeId);
    if (userState) {
      // The newest change seen for a user, whatever its outcome: an older one arriving later
      // must not put an older password in place.
      await trx
        .insertInto("executor_user_state")
        .values({ entra_user_id: userState.entraUserId, change_id: progress.changeId, changed_at: userState.changedAt, order_key: userState.orderKey })
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
                eb("executor_user_state.order_key", "<=", userState.orderKey),
                eb.and([eb("executor_user_state.order_key", "is", null), eb("executor_user_state.changed_at", "<=", userState.changedAt)]),
              ]),
            ),
        )
        .execute();
    }
  };
}

/**
 * A newer change for the same user that makes this one moot: one already handled (the per-user
 * state), or — while this one is being retried — one waiting behind it in the log. Before the
 * first attempt the waiting ones need no look: they are handled after this one and win anyway.
 */
async function newerChangeFor(
  deps: ExecutorDeps,
  partitionKey: string,
  after: bigint,
  mine: UserState,
  changeId: string,
  includeQueued: boolean,
): Promise<string | undefined> {
  const [state, later] = await Promise.all([
    deps.log.db
      .selectFrom("executor_user_state")
      .select(["change_id", "changed_at", "order_key"])
      .where("entra_user_id", "=", partitionKey.replace(/^user-/, ""))
      .executeTakeFirst(),
    includeQueued ? readByPartitionKey(deps.log.db, partitionKey, ["UserResolved"], after) : Promise.resolve([]),
  ]);
  if (state && state.change_id !== changeId) {
    const newer = state.order_key ? supersededBy(mine.orderKey, state.order_key) : state.changed_at.getTime() > mine.changedAt.getTime();
    if (newer) return state.change_id;
  }
  for (const event of later) {
    const other = decodeEvent("UserResolved", event.data);
    if (other.changeId !== changeId && supersededBy(mine.orderKey, orderKey(orderFactsOfResolved(other)))) return other.changeId;
  }
  return undefined;
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
  const resolved = decodeEvent("UserResolved", event.data);
  const stream = await readStream(deps.log.db, event.streamId);
  // An admin's RetryRequested reopens a failed change: only what follows the latest one counts.
  const current = stream.slice(lastRetryRequestIndex(stream) + 1);
  if (current.some((e) => (TERMINAL_TYPES as readonly string[]).includes(e.type))) return;
  const captured = decodeEvent("ChangeCaptured", stream[0]!.data) as EventPayload<"ChangeCaptured">;
  const retries = current.filter((e) => e.type === "RetryScheduled").map((e) => decodeEvent("RetryScheduled", e.data));
  const progress: Progress = {
    changeId: resolved.changeId,
    streamId: event.streamId,
    version: stream.length,
    attempts: retries.length,
    workMs: 0,
    waitMs: retries.reduce((sum, r) => sum + r.delayMs, 0),
    receivedAt: captured.receivedAt ? timestampDate(captured.receivedAt) : event.createdAt,
    metadata: event.metadata,
  };
  const changedAt = resolved.changedAt ? timestampDate(resolved.changedAt) : event.createdAt;
  const userState: UserState = { entraUserId: resolved.entraUserId, changedAt, orderKey: orderKey(orderFactsOfResolved(resolved)) };
  const upn = resolved.entraUserPrincipalName;
  const logContext = { changeId: resolved.changeId, entraUserId: resolved.entraUserId, upn };

  const supersede = (by: string) => {
    deps.logger.info({ ...logContext, supersededBy: by }, "older change superseded by a newer one for the same user");
    // Recorded like any outcome: a still older change delivered later must be seen as older.
    return terminal(progress, newEvent("Superseded", { changeId: resolved.changeId, entraUserId: resolved.entraUserId, supersededByChangeId: by }), userState);
  };
  const fail = (reason: ResetFailureReason, detail: string, graphError?: ClassifiedGraphError, secretExists = true) => {
    deps.logger.warn({ ...logContext, reason: ResetFailureReason[reason], detail, attempts: progress.attempts }, "password reset failed");
    return terminal(
      progress,
      newEvent("ResetFailed", {
        changeId: resolved.changeId,
        entraUserId: resolved.entraUserId,
        reason,
        detail,
        httpStatus: graphError?.httpStatus ?? 0,
        graphErrorCode: graphError?.code ?? "",
        attempts: progress.attempts,
        timing: timing(progress),
      }),
      userState,
      secretExists && deps.retainSecretOnFailure === true,
    );
  };

  const newer = await newerChangeFor(deps, event.partitionKey, event.globalPosition, userState, resolved.changeId, false);
  if (newer) return supersede(newer);

  const secret = await loadSealedSecret(deps.log.db, resolved.changeId);
  if (!secret)
    return fail(ResetFailureReason.UNSEAL_FAILED, "the sealed password is missing from sealed_secrets; the change cannot be applied", undefined, false);
  let password: Buffer;
  try {
    password = unseal(deps.keys, resolved.changeId, decodeEnvelope(secret.envelope));
  } catch (err) {
    if (err instanceof UnsealError) return fail(ResetFailureReason.UNSEAL_FAILED, err.message);
    return fail(ResetFailureReason.UNSEAL_FAILED, `the sealed password is unreadable: ${(err as Error).message}`);
  }
  try {
    // A JS string cannot be wiped; it lives only for the Graph request and is left to the GC.
    // The Buffer it came from is zeroed below.
    const text = password.toString("utf8");
    const rules = checkEntraPasswordRules(text, deps.config.minPasswordLength);
    if (!rules.ok) return fail(ResetFailureReason.COMPLEXITY, rules.detail);
    for (;;) {
      if (progress.attempts > 0) {
        const newerNow = await newerChangeFor(deps, event.partitionKey, event.globalPosition, userState, resolved.changeId, true);
        if (newerNow) return supersede(newerNow);
      }
      if (deps.config.rateLimit.enabled) progress.waitMs += await deps.limiter.acquire((ms) => sleepFor(ms, undefined, { signal: stop }));
      const checkedAt = performance.now();
      // Nothing is sent after this deadline, so the attempt's recorded lifetime bounds it.
      const deadline = AbortSignal.timeout(deps.config.fencing.maxSendDelayMs + deps.requestTimeoutMs);
      const begun = await beginWriteAttempt(deps, context, resolved.entraUserId, resolved.changeId);
      if ("waitMs" in begun) {
        deps.logger.info({ ...logContext, waitMs: begun.waitMs }, "another change's password write for this user may still be in flight; waiting it out");
        await sleepFor(begun.waitMs, undefined, { signal: stop });
        progress.waitMs += begun.waitMs;
        continue;
      }
      if (performance.now() - checkedAt > deps.config.fencing.maxSendDelayMs) continue; // stalled after the check: check again
      progress.attempts++;
      const started = performance.now();
      let error: ClassifiedGraphError;
      let answered = true;
      try {
        await setPassword(deps.graph, resolved.entraUserId, text, {
          forceChangePasswordNextSignIn: deps.config.forceChangePasswordNextSignIn,
          signal: AbortSignal.any([deadline, context.signal]),
        });
        progress.workMs += performance.now() - started;
        recordGraphAttempt("set_password", performance.now() - started, 204);
        deps.logger.info({ ...logContext, attempts: progress.attempts, ...timing(progress) }, "password set in Entra ID");
        return terminal(
          progress,
          newEvent("PasswordSet", { changeId: resolved.changeId, entraUserId: resolved.entraUserId, attempts: progress.attempts, timing: timing(progress) }),
          userState,
          false,
          begun.attemptId,
        );
      } catch (err) {
        progress.workMs += performance.now() - started;
        if (context.signal.aborted) throw err; // the partition is gone; its new owner takes over
        error = deadline.aborted ? classifyGraphError(new NoAnswer(`no answer from Graph within ${deps.requestTimeoutMs} ms`)) : classifyGraphError(err);
        // httpStatus 0: no answer, so the write may still land; its attempt stays until it expires.
        answered = error.httpStatus > 0;
        recordGraphAttempt("set_password", performance.now() - started, error.httpStatus, error.kind);
      }
      if (answered) await deps.log.db.deleteFrom("graph_write_attempts").where("attempt_id", "=", begun.attemptId).execute();
      const next = decideAfterGraphError({
        error,
        attempts: progress.attempts,
        retryLimit: deps.config.retryLimit,
        backoffMs: (attempt) => backoffDelay(attempt, deps.config.backoff.baseMs, deps.config.backoff.maxMs),
        userPrincipalName: upn,
      });
      if (next.kind === "fail") return fail(next.reason, next.detail, error);
      const { delayMs, fromRetryAfter } = next;
      if (next.pauseWriteBudget) await deps.limiter.pauseFor(delayMs);
      const appended = await appendToStream(
        deps.log.db,
        event.streamId,
        [
          {
            ...newEvent("RetryScheduled", {
              changeId: resolved.changeId,
              attempt: progress.attempts,
              httpStatus: error.httpStatus,
              graphErrorCode: error.code,
              delayMs,
              fromRetryAfter,
              notBefore: timestampFromDate(new Date(Date.now() + delayMs)),
            }),
            metadata: { ...progress.metadata, actor: "reset-executor" },
          },
        ],
        { expectedVersion: progress.version },
      );
      if (!appended.success) throw new Error(`change ${resolved.changeId} moved on while it was being retried`);
      progress.version = appended.nextVersion;
      deps.logger.warn(
        { ...logContext, attempt: progress.attempts, kind: error.kind, httpStatus: error.httpStatus, code: error.code, delayMs, fromRetryAfter },
        "password reset will be retried",
      );
      await sleepFor(delayMs, undefined, { signal: stop });
      progress.waitMs += delayMs;
    }
  } finally {
    password.fill(0);
  }
}

function lastRetryRequestIndex(stream: StoredEvent[]): number {
  for (let i = stream.length - 1; i >= 0; i--) if (stream[i]!.type === "RetryRequested") return i;
  return -1;
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
