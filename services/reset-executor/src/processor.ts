import { setTimeout as sleepFor } from "node:timers/promises";
import type { Kysely } from "kysely";
import { decodeEnvelope, unseal, UnsealError, type RecipientKeyPair } from "@pwsync/crypto";
import {
  appendToStream,
  isChangeOutcome,
  readByPartitionKey,
  startProcessor,
  type Database,
  type EventLog,
  type HandlerContext,
  type Processor,
  type StoredEvent,
} from "@pwsync/eventlog";
import { classifyGraphError, GraphBatcher, setPassword, type ClassifiedGraphError, type GraphClient } from "@pwsync/graph";
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
import { OutcomeCommits, type Outcome } from "./outcome-commits.js";
import { ChangeReads } from "./change-reads.js";
import { WriteClaims } from "./write-claims.js";
import { backoffDelay } from "./rate-limiter.js";
import type { WriteBudget } from "./write-budget.js";

export interface ExecutorDeps {
  log: EventLog;
  graph: GraphClient;
  /**
   * Sends password writes asked at about the same time as one Graph `$batch`; startExecutor makes
   * one over `graph`. A write whose signal has fired is never sent, and a batch is given up at its
   * earliest member's deadline, so fencing's bounds hold per write (ARCHITECTURE.md, Fencing).
   */
  writes?: GraphBatcher;
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

/** The decided events of a terminal outcome and what commits with them (outcome-commits.ts). */
function outcomeOf(handling: Handling, decided: DecidedEvent[], answeredAttempt?: string): Outcome {
  const stored = decided.filter(isStored);
  const outcome = stored.find((e) => e.type !== "SecretShredded" && e.type !== "RetryScheduled");
  if (outcome && "timing" in outcome.data) recordOutcome(outcome.type, { ...outcome.data.timing, attempts: outcome.data.attempts });
  else if (outcome) recordOutcome(outcome.type, { ...timing(handling.state, new Date()), attempts: handling.state.attempts });
  const change = handling.state.change!;
  return {
    changeId: change.changeId,
    streamId: handling.streamId,
    expectedVersion: handling.version,
    events: stored.map((e) => ({ ...newEvent(e.type, e.data as never), metadata: { ...handling.metadata, actor: "reset-executor" } })),
    shred: stored.some((e) => e.type === "SecretShredded"),
    answeredAttempt,
    user: { entraUserId: change.entraUserId, changedAt: change.changedAt, orderKey: change.orderKey },
  };
}

const STORED_TYPES = new Set(["PasswordSet", "ResetFailed", "Superseded", "SecretShredded", "RetryScheduled"]);
function isStored(event: DecidedEvent): event is StoredDecision {
  return STORED_TYPES.has(event.type);
}

/** The user's newest finished change (executor_user_state). */
async function newestOfUser(db: Kysely<Database>, entraUserId: string): Promise<NewestOfUser | undefined> {
  const row = await db
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

/** The request timed out by our own deadline: no answer, so the outcome is unknown. */
class NoAnswer extends Error {
  readonly code = "ETIMEDOUT";
}

/** The executor's shared I/O helpers: reads, claims and outcome commits group across handlers. */
interface Executor {
  deps: ExecutorDeps;
  reads: ChangeReads;
  claims: WriteClaims;
  outcomes: OutcomeCommits;
}

/**
 * The outcome commits as soon as it is known, not with the batch's checkpoint: a finished write
 * must not wait behind a slower sibling in the batch (a kill would lose it and the next owner
 * would write again), and a success must count among the attempts as soon as a failure does.
 * The stream's expected version keeps it to one outcome per change.
 */
async function handleUserResolved(executor: Executor, event: StoredEvent, context: HandlerContext): Promise<void> {
  const outcome = await resetPassword(executor, event, context);
  if (outcome) await executor.outcomes.commit(outcome);
}

async function resetPassword(executor: Executor, event: StoredEvent, context: HandlerContext): Promise<Outcome | void> {
  const { deps } = executor;
  // Shutdown or a lost partition: either ends every wait.
  const stop = AbortSignal.any([deps.signal, context.signal]);
  const resolved = decodeEvent("UserResolved", event.data);
  const {
    stream,
    newestOfUser: newest,
    sealed: secret,
  } = await executor.reads.read({
    streamId: event.streamId,
    changeId: resolved.changeId,
    entraUserId: resolved.entraUserId,
  });
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
  const conclude = (decided: DecidedEvent[], answeredAttempt?: string): Outcome => {
    logOutcome(deps, logContext, decided);
    return outcomeOf(handling, decided, answeredAttempt);
  };

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
            newestOfUser: await newestOfUser(deps.log.db, change.entraUserId),
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
      const claim = await executor.claims.claim({ fence: context.fence, entraUserId: change.entraUserId, changeId: change.changeId });
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
        const options = { forceChangePasswordNextSignIn: deps.config.forceChangePasswordNextSignIn, signal: AbortSignal.any([deadline, context.signal]) };
        await (deps.writes ? deps.writes.setPassword(change.entraUserId, text, options) : setPassword(deps.graph, change.entraUserId, text, options));
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

export function startExecutor(options: ExecutorDeps): Promise<Processor> {
  const deps: ExecutorDeps = { ...options, writes: options.writes ?? new GraphBatcher(options.graph) };
  const { maxSendDelayMs, graceMs } = deps.config.fencing;
  const executor: Executor = {
    deps,
    reads: new ChangeReads(deps.log.db),
    claims: new WriteClaims(deps.log.db, maxSendDelayMs + deps.requestTimeoutMs + graceMs),
    outcomes: new OutcomeCommits(deps.log.db),
  };
  return startProcessor(deps.log, {
    group: "reset-executor",
    eventTypes: ["UserResolved"],
    // One user's changes still run one after the other (partition key = user).
    concurrency: 16,
    handle: tracedHandler("reset-executor", (event, context: HandlerContext) => handleUserResolved(executor, event, context)),
    logger: deps.logger,
  });
}
