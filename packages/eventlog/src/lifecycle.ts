import type { EventTypeName } from "@pwsync/proto";

// The one home of a change's lifecycle: which events move a change along, what state each
// leaves it in, and which ones end it. The admin view (migration 0009's change_state_after()),
// the admin's retry rule, the notifier, the reset-executor and the launcher's load runs all read
// it from here; lifecycle.int.test.ts proves the SQL function says the same for every event type.

/** The state a change is in after each step of its pipeline; its latest step decides. */
export const CHANGE_STATE_AFTER = {
  ChangeCaptured: "captured",
  UserResolved: "resolved",
  RetryScheduled: "retrying",
  PasswordSet: "password_set",
  ResetFailed: "failed",
  ResolutionFailed: "failed",
  Superseded: "superseded",
  RetryRequested: "retry_requested",
} as const satisfies Partial<Record<EventTypeName, string>>;

export type ChangeStep = keyof typeof CHANGE_STATE_AFTER;
export type ChangeStateName = (typeof CHANGE_STATE_AFTER)[ChangeStep];
export const CHANGE_STEP_TYPES = Object.keys(CHANGE_STATE_AFTER) as readonly ChangeStep[];

/**
 * The events that end the pipeline's work on a change. Nothing follows one but bookkeeping
 * (SecretShredded, Notification*), unless an admin's RetryRequested reopens a failed change.
 * ChangeRefused ends a change ingest refused at the door: it is the only event of its stream.
 */
export const CHANGE_OUTCOME_TYPES = [
  "PasswordSet",
  "ResetFailed",
  "ResolutionFailed",
  "Superseded",
  "ChangeRefused",
] as const satisfies readonly EventTypeName[];
export type ChangeOutcome = (typeof CHANGE_OUTCOME_TYPES)[number];

/** The outcomes that are failures (state "failed"): admins are alerted and may ask for a retry. */
export const FAILED_OUTCOME_TYPES = ["ResetFailed", "ResolutionFailed"] as const satisfies readonly ChangeOutcome[];
export type FailedOutcome = (typeof FAILED_OUTCOME_TYPES)[number];

export function isChangeStep(type: string): type is ChangeStep {
  return Object.hasOwn(CHANGE_STATE_AFTER, type);
}

export function isChangeOutcome(type: string): type is ChangeOutcome {
  return (CHANGE_OUTCOME_TYPES as readonly string[]).includes(type);
}

export function isFailedOutcome(type: string): type is FailedOutcome {
  return (FAILED_OUTCOME_TYPES as readonly string[]).includes(type);
}
