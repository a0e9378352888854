import type { ClassifiedGraphError } from "@pwsync/graph";
import { ResetFailureReason } from "@pwsync/proto";

// What the reset-executor decides, without I/O: the processor (processor.ts) performs it.

/** What to do after Graph refused or did not answer a password write. */
export type NextStep =
  | { kind: "fail"; reason: ResetFailureReason; detail: string }
  /** Wait `delayMs`, then try again; `pauseWriteBudget`: Graph throttled us, so every writer waits too. */
  | { kind: "retry"; delayMs: number; fromRetryAfter: boolean; pauseWriteBudget: boolean };

const FAILURE_REASON: Partial<Record<ClassifiedGraphError["kind"], ResetFailureReason>> = {
  complexity: ResetFailureReason.COMPLEXITY,
  notFound: ResetFailureReason.USER_NOT_FOUND,
  forbidden: ResetFailureReason.FORBIDDEN,
  dirSynced: ResetFailureReason.DIRECTORY_SYNCED,
};

/** Answers that say nothing about the password itself: the same write may succeed later. */
const RETRYABLE = new Set<ClassifiedGraphError["kind"]>(["throttled", "transient", "auth"]);

/**
 * After a failed attempt (`attempts` counts it): a refusal about the user or the password fails
 * the change with a reason an admin can act on; a throttle, an outage or a token problem is
 * retried after Graph's Retry-After, or else the backoff, until the retry limit is spent.
 */
export function decideAfterGraphError(input: {
  error: ClassifiedGraphError;
  attempts: number;
  retryLimit: number;
  /** The jittered backoff before the n-th retry (rate-limiter.ts's backoffDelay). */
  backoffMs: (attempt: number) => number;
  userPrincipalName: string;
}): NextStep {
  const { error, attempts } = input;
  if (!RETRYABLE.has(error.kind)) {
    return { kind: "fail", reason: FAILURE_REASON[error.kind] ?? ResetFailureReason.REJECTED, detail: describeGraphFailure(error, input.userPrincipalName) };
  }
  if (attempts >= input.retryLimit) {
    return {
      kind: "fail",
      reason: ResetFailureReason.RETRIES_EXHAUSTED,
      detail: `gave up after ${attempts} attempts (the retry limit); the last answer was ${error.httpStatus || "no response"} ${error.code}`,
    };
  }
  const fromRetryAfter = error.retryAfterMs !== undefined;
  return {
    kind: "retry",
    delayMs: Math.round(error.retryAfterMs ?? input.backoffMs(attempts)),
    fromRetryAfter,
    pauseWriteBudget: error.kind === "throttled",
  };
}

/** An admin-readable failure detail: Graph's status and code, never its message (it can echo the request). */
export function describeGraphFailure(error: ClassifiedGraphError, userPrincipalName: string): string {
  switch (error.kind) {
    case "complexity":
      return `Entra ID refused the new password of ${userPrincipalName} as not complex enough (HTTP ${error.httpStatus} ${error.code}); enforce the same complexity in the AD password policy`;
    case "forbidden":
      return `the pwsync app may not set the password of ${userPrincipalName}: it needs User.ReadWrite.All and the User Administrator role, and admins' passwords need Privileged Authentication Administrator (HTTP ${error.httpStatus} ${error.code})`;
    case "notFound":
      return `Entra ID user ${userPrincipalName} no longer exists (HTTP ${error.httpStatus} ${error.code})`;
    case "dirSynced":
      return `${userPrincipalName} is synchronised by Entra Connect; Graph refuses password writes for it (HTTP ${error.httpStatus} ${error.code})`;
    default:
      return `Graph answered ${error.httpStatus || "no response"} ${error.code}`;
  }
}
