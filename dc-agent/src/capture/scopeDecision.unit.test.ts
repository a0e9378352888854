import { describe, expect, it } from "vitest";
import { decideScope } from "./scopeDecision.js";

const capturedAt = new Date("2026-11-27T12:00:00Z");
const account = {
  dn: "CN=alice",
  mail: "alice@example.test",
  userPrincipalName: "alice@example.test",
  objectGuid: Buffer.alloc(16, 1),
  passwordLastSet: capturedAt,
  userAccountControl: 512,
  disabled: false,
};

describe("scope decision for a queued change", () => {
  it("given the directory cannot be asked, then the change waits at the head (never dropped for an outage)", () => {
    expect(decideScope(capturedAt, { kind: "unreachable", reason: "timeout" })).toEqual({ action: "wait", reason: "timeout" });
  });
  it("given the account is outside the scope, then it is dropped with the directory's reason", () => {
    expect(decideScope(capturedAt, { kind: "answered", result: { kind: "notMatched", reason: "not a member of Password Sync" } })).toEqual({
      action: "drop",
      reason: "not a member of Password Sync",
    });
  });
  it("given the account matches, then it is forwarded with UPN, mail and objectGUID, and pwdLastSet is only cross-checked", () => {
    const d = decideScope(capturedAt, {
      kind: "answered",
      result: { kind: "matched", account: { ...account, passwordLastSet: new Date(capturedAt.getTime() + 60_000) } },
    });
    expect(d).toMatchObject({
      action: "forward",
      enrich: { mail: "alice@example.test", userPrincipalName: "alice@example.test", objectGuid: account.objectGuid },
      passwordLastSet: { kind: "newerChangeSince" },
    });
  });
  it("given a matched account without mail or UPN, then only what AD has is forwarded", () => {
    const d = decideScope(capturedAt, { kind: "answered", result: { kind: "matched", account: { dn: "CN=x", userAccountControl: 512, disabled: false } } });
    expect(d).toEqual({ action: "forward", enrich: {}, passwordLastSet: { kind: "unknown" } });
  });
});
