import type { ClassifiedGraphError } from "@pwsync/graph";
import { ResetFailureReason } from "@pwsync/proto";
import { describe, expect, it } from "vitest";
import { decideAfterGraphError } from "./decide.js";

const graphError = (kind: ClassifiedGraphError["kind"], httpStatus: number, code: string, retryAfterMs?: number): ClassifiedGraphError => ({
  kind,
  httpStatus,
  code,
  message: "Graph's own words, possibly echoing the request: CANARY-never-copied",
  ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
});
const when = (error: ClassifiedGraphError, attempts = 1, retryLimit = 5) =>
  decideAfterGraphError({ error, attempts, retryLimit, backoffMs: (attempt) => 100 * attempt, userPrincipalName: "ada@contoso.example" });

describe("decideAfterGraphError: what the executor does after a failed password write", () => {
  it("given a 429 with Retry-After, waits exactly that long, pauses the shared budget, and retries", () => {
    expect(when(graphError("throttled", 429, "TooManyRequests", 7000))).toEqual({ kind: "retry", delayMs: 7000, fromRetryAfter: true, pauseWriteBudget: true });
  });

  it("given a 503 without Retry-After, retries after the backoff for this attempt, the budget untouched", () => {
    expect(when(graphError("transient", 503, "serviceNotAvailable"), 3)).toEqual({
      kind: "retry",
      delayMs: 300,
      fromRetryAfter: false,
      pauseWriteBudget: false,
    });
  });

  it("given no answer at all (a timeout), retries: the write may not have landed", () => {
    expect(when(graphError("transient", 0, "ETIMEDOUT"))).toMatchObject({ kind: "retry", fromRetryAfter: false });
  });

  it("given a token problem, retries (a new token may fix it)", () => {
    expect(when(graphError("auth", 401, "InvalidAuthenticationToken"))).toMatchObject({ kind: "retry" });
  });

  it("given the retry limit is spent, fails as RETRIES_EXHAUSTED naming the last answer", () => {
    expect(when(graphError("transient", 503, "serviceNotAvailable"), 5, 5)).toEqual({
      kind: "fail",
      reason: ResetFailureReason.RETRIES_EXHAUSTED,
      detail: "gave up after 5 attempts (the retry limit); the last answer was 503 serviceNotAvailable",
    });
  });

  it("given Entra refuses the password as not complex enough, fails at once as COMPLEXITY with advice", () => {
    const next = when(graphError("complexity", 400, "Request_BadRequest"));
    expect(next).toMatchObject({ kind: "fail", reason: ResetFailureReason.COMPLEXITY });
    expect(next.kind === "fail" && next.detail).toMatch(/ada@contoso\.example .*not complex enough .*AD password policy/);
  });

  it("given a user synchronised by Entra Connect, a vanished user or a missing role, fails at once with that reason", () => {
    expect(when(graphError("dirSynced", 400, "Request_BadRequest"))).toMatchObject({ kind: "fail", reason: ResetFailureReason.DIRECTORY_SYNCED });
    expect(when(graphError("notFound", 404, "Request_ResourceNotFound"))).toMatchObject({ kind: "fail", reason: ResetFailureReason.USER_NOT_FOUND });
    expect(when(graphError("forbidden", 403, "Authorization_RequestDenied"))).toMatchObject({ kind: "fail", reason: ResetFailureReason.FORBIDDEN });
  });

  it("given any other refusal, fails as REJECTED with Graph's status and code but never its message", () => {
    const next = when(graphError("other", 400, "Request_UnsupportedQuery"));
    expect(next).toEqual({ kind: "fail", reason: ResetFailureReason.REJECTED, detail: "Graph answered 400 Request_UnsupportedQuery" });
    for (const kind of ["complexity", "dirSynced", "notFound", "forbidden", "other"] as const) {
      const failed = when(graphError(kind, 400, "Code"));
      expect(failed.kind === "fail" && failed.detail).not.toMatch(/CANARY/);
    }
  });
});
