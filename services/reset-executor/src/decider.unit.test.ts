import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ClassifiedGraphError } from "@pwsync/graph";
import { ResetFailureReason, UserResolvedSchema } from "@pwsync/proto";
import { describe, expect, it } from "vitest";
import { decide, type ExecutorCommand, type ExecutorEvent, foldEvents, type NewestOfUser } from "./decider.js";
import { orderKey, type OrderFacts } from "./ordering.js";

// given events / when a command / then events: the reset-executor's decisions without Postgres,
// Graph or a clock.

const receivedAt = new Date("2026-11-28T10:00:00.000Z");
const now = new Date("2026-11-28T10:00:02.500Z");
const capturedAt = new Date("2026-11-28T09:59:59.000Z");

const facts = (changeId: string, at: Date, sequence = 1n): OrderFacts => ({
  changeId,
  capturedAt: timestampFromDate(at),
  changedAt: timestampFromDate(at),
  domainController: "dc01",
  captureSequence: sequence,
});

const captured: ExecutorEvent = { type: "ChangeCaptured", data: { receivedAt: timestampFromDate(receivedAt) } };
const resolved = (changeId = "c-mine", at = capturedAt): ExecutorEvent => ({
  type: "UserResolved",
  recordedAt: new Date(receivedAt.getTime() + 40),
  data: create(UserResolvedSchema, {
    changeId,
    entraUserId: "u-ada",
    entraUserPrincipalName: "ada@contoso.example",
    changedAt: timestampFromDate(at),
    capturedAt: timestampFromDate(at),
    domainController: "dc01",
    captureSequence: 1n,
  }),
});
const retried = (delayMs: number): ExecutorEvent => ({ type: "RetryScheduled", data: { delayMs } });
const pending = [captured, resolved()];

const opened = { kind: "opened", text: "Correct-Horse-7" } as const;
const start = (over: Partial<Extract<ExecutorCommand, { type: "StartReset" }>> = {}): ExecutorCommand => ({
  type: "StartReset",
  newestOfUser: undefined,
  password: opened,
  minPasswordLength: 8,
  retainSecretOnFailure: false,
  now,
  ...over,
});
const answer = (error?: ClassifiedGraphError, over: Partial<Extract<ExecutorCommand, { type: "RecordAnswer" }>> = {}): ExecutorCommand => ({
  type: "RecordAnswer",
  error,
  retryLimit: 3,
  backoffMs: (attempt) => 100 * attempt,
  retainSecretOnFailure: false,
  now,
  ...over,
});
const graphError = (kind: ClassifiedGraphError["kind"], httpStatus: number, code: string, retryAfterMs?: number): ClassifiedGraphError => ({
  kind,
  httpStatus,
  code,
  message: "",
  ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
});
const given = (...events: ExecutorEvent[]) => ({ when: (command: ExecutorCommand) => decide(command, foldEvents(events)) });
const newestOfUser = (changeId: string, at: Date): NewestOfUser => ({ changeId, orderKey: orderKey(facts(changeId, at)), changedAt: at });
const shredded = { type: "SecretShredded", data: { changeId: "c-mine" } };

describe("the reset-executor's decider: starting a change", () => {
  it("given a change whose user already got a newer change, supersedes it (and shreds its secret)", () => {
    const newer = newestOfUser("c-newer", new Date(capturedAt.getTime() + 1));
    expect(given(...pending).when(start({ newestOfUser: newer }))).toEqual([
      { type: "Superseded", data: { changeId: "c-mine", entraUserId: "u-ada", supersededByChangeId: "c-newer" } },
      shredded,
    ]);
  });

  it("given the user's newest finished change is older, or this very change, goes on to write (nothing to record)", () => {
    expect(given(...pending).when(start({ newestOfUser: newestOfUser("c-older", new Date(capturedAt.getTime() - 1)) }))).toEqual([]);
    expect(given(...pending).when(start({ newestOfUser: newestOfUser("c-mine", capturedAt) }))).toEqual([]);
  });

  it("given a user state row from before order keys, orders by pwdLastSet", () => {
    const legacy = { changeId: "c-legacy", orderKey: null, changedAt: new Date(capturedAt.getTime() + 1000) };
    expect(given(...pending).when(start({ newestOfUser: legacy }))[0]).toMatchObject({ type: "Superseded", data: { supersededByChangeId: "c-legacy" } });
    expect(given(...pending).when(start({ newestOfUser: { ...legacy, changedAt: capturedAt } }))).toEqual([]);
  });

  it("given a change already finished, decides nothing (a redelivery), unless an admin reopened it", () => {
    const done: ExecutorEvent = { type: "PasswordSet" };
    expect(given(...pending, done).when(start())).toEqual([]);
    expect(given(...pending, { type: "ResetFailed" }, { type: "RetryRequested" }).when(start({ password: { kind: "missing" } }))[0]).toMatchObject({
      type: "ResetFailed",
    });
  });

  it("given the sealed password is gone, fails as UNSEAL_FAILED and records the shredding even when secrets are kept", () => {
    expect(given(...pending).when(start({ password: { kind: "missing" }, retainSecretOnFailure: true }))).toEqual([
      {
        type: "ResetFailed",
        data: {
          changeId: "c-mine",
          entraUserId: "u-ada",
          reason: ResetFailureReason.UNSEAL_FAILED,
          detail: "the sealed password is missing from sealed_secrets; the change cannot be applied",
          httpStatus: 0,
          graphErrorCode: "",
          attempts: 0,
          timing: { totalMs: 2500, workMs: 0, waitMs: 0 },
        },
      },
      shredded,
    ]);
  });

  it("given an unreadable secret, fails as UNSEAL_FAILED and keeps the secret only when asked to", () => {
    const unreadable = { kind: "unreadable", detail: "no key k-1" } as const;
    expect(given(...pending).when(start({ password: unreadable }))).toMatchObject([
      { type: "ResetFailed", data: { reason: ResetFailureReason.UNSEAL_FAILED, detail: "no key k-1" } },
      shredded,
    ]);
    expect(given(...pending).when(start({ password: unreadable, retainSecretOnFailure: true }))).toMatchObject([{ type: "ResetFailed" }]);
  });

  it("given a password Entra would refuse, fails as COMPLEXITY before any Graph call, describing its shape only", () => {
    const decided = given(...pending).when(start({ password: { kind: "opened", text: "lowercase-only" } }));
    expect(decided).toMatchObject([{ type: "ResetFailed", data: { reason: ResetFailureReason.COMPLEXITY, attempts: 0 } }, shredded]);
    expect(JSON.stringify(decided)).not.toContain("lowercase-only");
  });

  it("a supersede wins over a missing secret (checked first)", () => {
    const newer = newestOfUser("c-newer", new Date(capturedAt.getTime() + 1));
    expect(given(...pending).when(start({ newestOfUser: newer, password: { kind: "missing" } }))[0]).toMatchObject({ type: "Superseded" });
  });
});

describe("the reset-executor's decider: retrying", () => {
  it("given a failed attempt and a newer change queued behind this one, supersedes it", () => {
    const queued = [facts("c-older", new Date(capturedAt.getTime() - 5)), facts("c-newer", new Date(capturedAt.getTime() + 5))];
    expect(given(...pending, retried(100)).when({ type: "CheckBeforeRetry", newestOfUser: undefined, queued })).toEqual([
      { type: "Superseded", data: { changeId: "c-mine", entraUserId: "u-ada", supersededByChangeId: "c-newer" } },
      shredded,
    ]);
  });

  it("given only older or the same change queued, retries (nothing to record)", () => {
    const queued = [facts("c-older", new Date(capturedAt.getTime() - 5)), facts("c-mine", capturedAt)];
    expect(given(...pending, retried(100)).when({ type: "CheckBeforeRetry", newestOfUser: undefined, queued })).toEqual([]);
  });

  it("given a tie on capture time, the DC's capture sequence decides", () => {
    const sameTime = [facts("c-a", capturedAt, 2n)];
    expect(given(...pending, retried(100)).when({ type: "CheckBeforeRetry", newestOfUser: undefined, queued: sameTime })[0]).toMatchObject({
      type: "Superseded",
    });
  });
});

describe("the reset-executor's decider: claiming the write", () => {
  const claim = (otherWriteInFlightMs: number, sinceClaimMs = 5): ExecutorCommand => ({
    type: "ClaimWrite",
    otherWriteInFlightMs,
    sinceClaimMs,
    maxSendDelayMs: 2000,
  });

  it("given no other change's write in flight and a fresh claim, sends", () => {
    expect(given(...pending).when(claim(0))).toEqual([{ type: "PasswordWriteCleared" }]);
  });

  it("given another change's write for the user may still be in flight, waits it out first", () => {
    expect(given(...pending).when(claim(31_500))).toEqual([{ type: "InFlightWriteAwaited", waitMs: 31_500 }]);
  });

  it("given the claim stalled past the send deadline, claims again rather than send late", () => {
    expect(given(...pending).when(claim(0, 2001))).toEqual([{ type: "WriteClaimLapsed" }]);
  });
});

describe("the reset-executor's decider: after Graph answered", () => {
  it("given a success on the second attempt, records PasswordSet with the attempts and where the time went", () => {
    const decided = given(...pending, { type: "Waited", ms: 40 }, { type: "Worked", ms: 30 }, retried(500), { type: "Worked", ms: 25.4 }).when(answer());
    expect(decided).toEqual([
      { type: "PasswordSet", data: { changeId: "c-mine", entraUserId: "u-ada", attempts: 2, timing: { totalMs: 2500, workMs: 55, waitMs: 540 } } },
      shredded,
    ]);
  });

  it("given a 429 with Retry-After, schedules a retry at that time and pauses every writer", () => {
    expect(given(...pending).when(answer(graphError("throttled", 429, "TooManyRequests", 7000)))).toEqual([
      { type: "WriteBudgetPaused", ms: 7000 },
      {
        type: "RetryScheduled",
        data: {
          changeId: "c-mine",
          attempt: 1,
          httpStatus: 429,
          graphErrorCode: "TooManyRequests",
          delayMs: 7000,
          fromRetryAfter: true,
          notBefore: timestampFromDate(new Date(now.getTime() + 7000)),
        },
      },
    ]);
  });

  it("given the retry limit is reached, fails as RETRIES_EXHAUSTED counting every attempt", () => {
    const decided = given(...pending, retried(100), retried(200)).when(answer(graphError("transient", 503, "serviceNotAvailable")));
    expect(decided).toMatchObject([{ type: "ResetFailed", data: { reason: ResetFailureReason.RETRIES_EXHAUSTED, attempts: 3, httpStatus: 503 } }, shredded]);
  });

  it("given an admin's retry after a failure, counts attempts afresh", () => {
    const decided = given(...pending, retried(100), retried(200), { type: "ResetFailed" }, { type: "RetryRequested" }).when(
      answer(graphError("transient", 503, "serviceNotAvailable")),
    );
    expect(decided).toMatchObject([{ type: "RetryScheduled", data: { attempt: 1, delayMs: 100 } }]);
  });

  it("given a refusal about the user, fails at once and keeps the secret when asked to", () => {
    expect(given(...pending).when(answer(graphError("notFound", 404, "Request_ResourceNotFound"), { retainSecretOnFailure: true }))).toMatchObject([
      { type: "ResetFailed", data: { reason: ResetFailureReason.USER_NOT_FOUND, attempts: 1, httpStatus: 404, graphErrorCode: "Request_ResourceNotFound" } },
    ]);
  });

  it("given a change with no receipt time (an older ingest), times it from its resolution", () => {
    const decided = given({ type: "ChangeCaptured", data: {} }, resolved()).when(answer());
    expect(decided[0]).toMatchObject({ type: "PasswordSet", data: { timing: { totalMs: 2460 } } });
  });
});
