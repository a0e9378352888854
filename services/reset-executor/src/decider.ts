import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type ChangeOutcome, isChangeOutcome } from "@pwsync/eventlog";
import type { ClassifiedGraphError } from "@pwsync/graph";
import { type EventPayload, ResetFailureReason } from "@pwsync/proto";
import { decideAfterGraphError } from "./decide.js";
import { type OrderFacts, orderFactsOfResolved, orderKey, supersededBy } from "./ordering.js";
import { checkEntraPasswordRules } from "./password-rules.js";

// The reset-executor's decisions for one change as an emmett-style decider: the state is a
// fold (evolve) of the change's events, and decide(command, state) answers with new events.
// No I/O here: processor.ts reads, folds, asks, and performs what was decided.

export interface ResolvedChange {
  changeId: string;
  entraUserId: string;
  userPrincipalName: string;
  /** pwdLastSet as the agent read it; only ordered by when a stored user state has no order key. */
  changedAt: Date;
  /** ordering.ts: (capture time, DC, capture sequence, change id). */
  orderKey: Buffer;
}

export interface ExecutorState {
  /** From the latest UserResolved. */
  change: ResolvedChange | undefined;
  /** When ingest received the change: the start of every timing. */
  receivedAt: Date | undefined;
  /** A terminal outcome since the latest RetryRequested. */
  finished: boolean;
  /** Password writes that got an outcome other than success since the latest RetryRequested. */
  attempts: number;
  waitedMs: number;
  workedMs: number;
}

export type Timing = { totalMs: number; workMs: number; waitMs: number };

/** Events as the decider folds them: the change's stored events, its own decisions, and measured time. */
export type ExecutorEvent =
  | { type: "ChangeCaptured"; data: { receivedAt?: Timestamp | undefined } }
  /** `recordedAt` stands in for capture and receipt times that older agents did not send. */
  | { type: "UserResolved"; data: EventPayload<"UserResolved">; recordedAt: Date }
  | { type: "RetryScheduled"; data: { delayMs: number } }
  /** Stored outcomes and an admin's reopening: only their type matters here. */
  | { type: "RetryRequested" | ChangeOutcome; data?: unknown }
  | DecidedEvent
  /** Measured by the processor: waiting for the write budget, an in-flight write or a retry; time in Graph requests. */
  | { type: "Waited"; ms: number }
  | { type: "Worked"; ms: number };

/** Decided and stored in the change's stream. */
export type StoredDecision =
  | { type: "PasswordSet"; data: { changeId: string; entraUserId: string; attempts: number; timing: Timing } }
  | {
      type: "ResetFailed";
      data: {
        changeId: string;
        entraUserId: string;
        reason: ResetFailureReason;
        detail: string;
        httpStatus: number;
        graphErrorCode: string;
        attempts: number;
        timing: Timing;
      };
    }
  | { type: "Superseded"; data: { changeId: string; entraUserId: string; supersededByChangeId: string } }
  | { type: "SecretShredded"; data: { changeId: string } }
  | {
      type: "RetryScheduled";
      data: { changeId: string; attempt: number; httpStatus: number; graphErrorCode: string; delayMs: number; fromRetryAfter: boolean; notBefore: Timestamp };
    };

/** Decided for this handling only, never stored: what the processor does next. */
export type LocalDecision =
  /** Send the password now: the claim on the write is fresh and nothing else is in flight. */
  | { type: "PasswordWriteCleared" }
  /** Another change's write for this user may still be in flight: wait it out, then claim again. */
  | { type: "InFlightWriteAwaited"; waitMs: number }
  /** Too long passed since the claim to send within its recorded lifetime: claim again. */
  | { type: "WriteClaimLapsed" }
  /** Graph throttled the app: every writer waits, not only this change. */
  | { type: "WriteBudgetPaused"; ms: number };

export type DecidedEvent = StoredDecision | LocalDecision;

/** The newest change of the user that the executor already finished (executor_user_state). */
export interface NewestOfUser {
  changeId: string;
  /** Absent on rows written before order keys existed: changedAt decides then. */
  orderKey: Buffer | null;
  changedAt: Date;
}

/** What became of the sealed password when the processor tried to open it. */
export type PasswordReading = { kind: "missing" } | { kind: "unreadable"; detail: string } | { kind: "opened"; text: string };

export type ExecutorCommand =
  /** First look at a change that is not finished. */
  | {
      type: "StartReset";
      newestOfUser: NewestOfUser | undefined;
      password: PasswordReading;
      minPasswordLength: number;
      retainSecretOnFailure: boolean;
      now: Date;
    }
  /** Before writing again after a failed attempt: has a newer change been finished, or arrived behind this one? */
  | { type: "CheckBeforeRetry"; newestOfUser: NewestOfUser | undefined; queued: readonly OrderFacts[] }
  /** The fenced claim on the write came back (the ownership check passed). */
  | { type: "ClaimWrite"; otherWriteInFlightMs: number; sinceClaimMs: number; maxSendDelayMs: number }
  /** Graph answered the write, refused it, or did not answer in time. */
  | {
      type: "RecordAnswer";
      error: ClassifiedGraphError | undefined;
      retryLimit: number;
      backoffMs: (attempt: number) => number;
      retainSecretOnFailure: boolean;
      now: Date;
    };

export function initialState(): ExecutorState {
  return { change: undefined, receivedAt: undefined, finished: false, attempts: 0, waitedMs: 0, workedMs: 0 };
}

export function evolve(state: ExecutorState, event: ExecutorEvent): ExecutorState {
  // Stored or just decided, an outcome (lifecycle.ts) ends the change until a RetryRequested.
  if (isChangeOutcome(event.type)) return { ...state, finished: true };
  switch (event.type) {
    case "ChangeCaptured":
      return { ...state, receivedAt: event.data.receivedAt ? timestampDate(event.data.receivedAt) : state.receivedAt };
    case "UserResolved": {
      const resolved = event.data;
      return {
        ...state,
        receivedAt: state.receivedAt ?? event.recordedAt,
        change: {
          changeId: resolved.changeId,
          entraUserId: resolved.entraUserId,
          userPrincipalName: resolved.entraUserPrincipalName,
          changedAt: resolved.changedAt ? timestampDate(resolved.changedAt) : event.recordedAt,
          orderKey: orderKey(orderFactsOfResolved(resolved)),
        },
      };
    }
    case "RetryRequested":
      // An admin reopened a failed change: only what follows counts.
      return { ...state, finished: false, attempts: 0, waitedMs: 0, workedMs: 0 };
    case "RetryScheduled":
      return { ...state, attempts: state.attempts + 1, waitedMs: state.waitedMs + event.data.delayMs };
    case "Waited":
      return { ...state, waitedMs: state.waitedMs + event.ms };
    case "Worked":
      return { ...state, workedMs: state.workedMs + event.ms };
    default:
      return state;
  }
}

export function decide(command: ExecutorCommand, state: ExecutorState): DecidedEvent[] {
  const change = state.change;
  if (!change) throw new Error(`${command.type}: the change has no UserResolved yet`);
  // Idempotent: a finished change decides nothing more (a redelivered event, a takeover).
  if (state.finished) return [];
  switch (command.type) {
    case "StartReset": {
      // Before the first attempt only finished changes need a look: queued ones are handled
      // after this one and win anyway.
      const newer = newerFinished(change, command.newestOfUser);
      if (newer) return superseded(change, newer);
      const fail = (reason: ResetFailureReason, detail: string, secretExists = true) =>
        failed(state, change, { reason, detail, attempts: state.attempts, now: command.now, keepSecret: secretExists && command.retainSecretOnFailure });
      const password = command.password;
      if (password.kind === "missing")
        return fail(ResetFailureReason.UNSEAL_FAILED, "the sealed password is missing from sealed_secrets; the change cannot be applied", false);
      if (password.kind === "unreadable") return fail(ResetFailureReason.UNSEAL_FAILED, password.detail);
      const rules = checkEntraPasswordRules(password.text, command.minPasswordLength);
      if (!rules.ok) return fail(ResetFailureReason.COMPLEXITY, rules.detail);
      return [];
    }
    case "CheckBeforeRetry": {
      const newer = newerFinished(change, command.newestOfUser) ?? command.queued.find((other) => isNewer(change, other))?.changeId;
      return newer ? superseded(change, newer) : [];
    }
    case "ClaimWrite":
      if (command.otherWriteInFlightMs > 0) return [{ type: "InFlightWriteAwaited", waitMs: command.otherWriteInFlightMs }];
      if (command.sinceClaimMs > command.maxSendDelayMs) return [{ type: "WriteClaimLapsed" }];
      return [{ type: "PasswordWriteCleared" }];
    case "RecordAnswer": {
      const attempts = state.attempts + 1;
      const { error, now } = command;
      if (!error)
        return [
          { type: "PasswordSet", data: { changeId: change.changeId, entraUserId: change.entraUserId, attempts, timing: timing(state, now) } },
          shredded(change),
        ];
      const next = decideAfterGraphError({
        error,
        attempts,
        retryLimit: command.retryLimit,
        backoffMs: command.backoffMs,
        userPrincipalName: change.userPrincipalName,
      });
      if (next.kind === "fail")
        return failed(state, change, { reason: next.reason, detail: next.detail, error, attempts, now, keepSecret: command.retainSecretOnFailure });
      const retry: DecidedEvent = {
        type: "RetryScheduled",
        data: {
          changeId: change.changeId,
          attempt: attempts,
          httpStatus: error.httpStatus,
          graphErrorCode: error.code,
          delayMs: next.delayMs,
          fromRetryAfter: next.fromRetryAfter,
          notBefore: timestampFromDate(new Date(now.getTime() + next.delayMs)),
        },
      };
      return next.pauseWriteBudget ? [{ type: "WriteBudgetPaused", ms: next.delayMs }, retry] : [retry];
    }
  }
}

/** Folds events in order from the initial state. */
export function foldEvents(events: readonly ExecutorEvent[], from: ExecutorState = initialState()): ExecutorState {
  return events.reduce(evolve, from);
}

export function timing(state: ExecutorState, now: Date): Timing {
  const receivedAt = state.receivedAt ?? now;
  return { totalMs: Math.max(0, now.getTime() - receivedAt.getTime()), workMs: Math.round(state.workedMs), waitMs: Math.round(state.waitedMs) };
}

/** The newest finished change of the user, when it is newer than this one. */
function newerFinished(change: ResolvedChange, newest: NewestOfUser | undefined): string | undefined {
  if (!newest || newest.changeId === change.changeId) return undefined;
  const newer = newest.orderKey ? supersededBy(change.orderKey, newest.orderKey) : newest.changedAt.getTime() > change.changedAt.getTime();
  return newer ? newest.changeId : undefined;
}

function isNewer(change: ResolvedChange, other: OrderFacts): boolean {
  return other.changeId !== change.changeId && supersededBy(change.orderKey, orderKey(other));
}

function shredded(change: ResolvedChange): DecidedEvent {
  return { type: "SecretShredded", data: { changeId: change.changeId } };
}

function superseded(change: ResolvedChange, by: string): DecidedEvent[] {
  // Recorded like any outcome: a still older change delivered later must be seen as older.
  return [{ type: "Superseded", data: { changeId: change.changeId, entraUserId: change.entraUserId, supersededByChangeId: by } }, shredded(change)];
}

function failed(
  state: ExecutorState,
  change: ResolvedChange,
  outcome: { reason: ResetFailureReason; detail: string; error?: ClassifiedGraphError; attempts: number; now: Date; keepSecret: boolean },
): DecidedEvent[] {
  const event: DecidedEvent = {
    type: "ResetFailed",
    data: {
      changeId: change.changeId,
      entraUserId: change.entraUserId,
      reason: outcome.reason,
      detail: outcome.detail,
      httpStatus: outcome.error?.httpStatus ?? 0,
      graphErrorCode: outcome.error?.code ?? "",
      attempts: outcome.attempts,
      timing: timing(state, outcome.now),
    },
  };
  // Kept after a failure only if asked, so an admin can retry; the secret reaper shreds it later.
  return outcome.keepSecret ? [event] : [event, shredded(change)];
}
