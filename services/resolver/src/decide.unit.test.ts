import { MatchedBy, ResolutionFailureReason } from "@pwsync/proto";
import { describe, expect, it } from "vitest";
import { decide, plannedLookups, type Candidate } from "./decide.js";

const user = (over: Partial<Candidate> = {}): Candidate => ({
  id: "u1",
  userPrincipalName: "alice@contoso.example",
  accountEnabled: true,
  onPremisesSyncEnabled: null,
  ...over,
});

describe("plannedLookups", () => {
  it("follows the configured order and skips identifiers the change lacks", () => {
    expect(plannedLookups(["mail", "immutableId", "userPrincipalName"], { immutableId: "", userPrincipalName: "a@x", mail: "m@x" })).toEqual([
      { by: "mail", value: "m@x" },
      { by: "userPrincipalName", value: "a@x" },
    ]);
  });
});

describe("decide", () => {
  it("resolves the single user found by the first lookup that finds anyone", () => {
    const result = decide("alice", [
      { by: "immutableId", value: "AAAA", found: [] },
      { by: "mail", value: "alice@contoso.example", found: [user()] },
    ]);
    expect(result).toEqual({ kind: "resolved", user: user(), matchedBy: MatchedBy.MAIL });
  });

  it("fails as not found, naming every lookup tried", () => {
    const result = decide("alice", [
      { by: "immutableId", value: "AAAA", found: [] },
      { by: "userPrincipalName", value: "alice@contoso.example", found: [] },
    ]);
    expect(result).toMatchObject({ kind: "failed", reason: ResolutionFailureReason.NOT_FOUND });
    if (result.kind === "failed")
      expect(result.detail).toBe("no Entra ID user for account alice: looked up onPremisesImmutableId 'AAAA', userPrincipalName 'alice@contoso.example'");
  });

  it("refuses to guess between several matches", () => {
    const result = decide("alice", [{ by: "mail", value: "a@x", found: [user(), user({ id: "u2", userPrincipalName: "alice2@contoso.example" })] }]);
    expect(result).toMatchObject({ kind: "failed", reason: ResolutionFailureReason.AMBIGUOUS });
    if (result.kind === "failed") expect(result.detail).toContain("alice@contoso.example, alice2@contoso.example");
  });

  it("fails for a user synced by Entra Connect, saying why Graph would refuse", () => {
    const result = decide("alice", [{ by: "mail", value: "a@x", found: [user({ onPremisesSyncEnabled: true })] }]);
    expect(result).toMatchObject({ kind: "failed", reason: ResolutionFailureReason.DIRECTORY_SYNCED });
    if (result.kind === "failed") expect(result.detail).toMatch(/Entra Connect.*refuses password writes/);
  });

  it("given an agent scoped to contoso.example, when the user found by objectGUID is in fabrikam.example, then it fails as out of scope", () => {
    const ceo = user({ userPrincipalName: "ceo@fabrikam.example" });
    const result = decide("ceo", [{ by: "immutableId", value: "AAAA", found: [ceo] }], ["contoso.example"]);
    expect(result).toMatchObject({ kind: "failed", reason: ResolutionFailureReason.OUT_OF_SCOPE });
  });

  it("given an agent scoped to contoso.example, when the user found is in it (any case), then it resolves", () => {
    const result = decide("alice", [{ by: "immutableId", value: "AAAA", found: [user({ userPrincipalName: "Alice@Contoso.Example" })] }], ["contoso.example"]);
    expect(result).toMatchObject({ kind: "resolved" });
  });

  it("fails for a disabled user", () => {
    expect(decide("alice", [{ by: "mail", value: "a@x", found: [user({ accountEnabled: false })] }])).toMatchObject({
      kind: "failed",
      reason: ResolutionFailureReason.DISABLED,
    });
  });

  it("fails when the change carries no identifier", () => {
    expect(decide("alice", [])).toMatchObject({ kind: "failed", reason: ResolutionFailureReason.NO_IDENTIFIERS });
  });
});
