import { describe, expect, it } from "vitest";
import { compareVersions, decideDelivery, type AccountMemory, type Delivery } from "./decide.js";

const t0 = 134402928520268480n;
const delivery = (pwdLastSet: bigint, keyVersion?: number, extra: Partial<Delivery> = {}): Delivery => ({
  pwdLastSet,
  keyVersion,
  isDeleted: false,
  hasClearText: true,
  ...extra,
});
const memory = (pwdLastSet: bigint, keyVersion: number | undefined, synced: boolean): AccountMemory => ({ pwdLastSet, keyVersion, synced });

describe("decideDelivery (dedup by objectGUID + pwdLastSet, ordered by the DC's pwdLastSet)", () => {
  it("given an account never seen, when a live change arrives, then it is queued and remembered as synced", () => {
    expect(decideDelivery(undefined, delivery(t0, 2), { kind: "live" })).toEqual({
      action: "queue",
      remember: { pwdLastSet: t0, keyVersion: 2, synced: true },
    });
  });

  it("given a change already queued, when syncpasswords delivers it again (restart, or a non-password modification), then it is skipped", () => {
    expect(decideDelivery(memory(t0, 2, true), delivery(t0, 2), { kind: "live" })).toMatchObject({
      action: "skip",
      reason: "same password write delivered again",
    });
  });

  it("given a newer change was handled, when an older state arrives, then it never overwrites the newer one", () => {
    expect(decideDelivery(memory(t0 + 10n, 3, true), delivery(t0, 2), { kind: "live" })).toMatchObject({ action: "skip" });
    expect(decideDelivery(memory(t0 + 10n, undefined, true), delivery(t0), { kind: "live" })).toMatchObject({ action: "skip" });
  });

  it("given the first run, when every account's current password is delivered, then it is remembered, not synced", () => {
    expect(decideDelivery(undefined, delivery(t0, 1), { kind: "baseline", startedAt: t0 + 1n })).toMatchObject({
      action: "remember",
      remember: { synced: false },
    });
  });

  it("given the first run, when a change made after the run began arrives, then it is synced", () => {
    expect(decideDelivery(undefined, delivery(t0 + 5n, 4), { kind: "baseline", startedAt: t0 })).toMatchObject({ action: "queue" });
  });

  it("given the baseline remembered a password, when the same write comes live, then it is still not synced; a new write is", () => {
    const known = memory(t0, 1, false);
    expect(decideDelivery(known, delivery(t0, 1), { kind: "live" })).toMatchObject({ action: "skip" });
    expect(decideDelivery(known, delivery(t0 + 1n, 2), { kind: "live" })).toMatchObject({ action: "queue" });
  });

  it("given an admin's bulk sync, when a baseline-only password arrives, then it is synced once; a second bulk skips it", () => {
    expect(decideDelivery(memory(t0, 1, false), delivery(t0, 1), { kind: "bulk" })).toMatchObject({ action: "queue", remember: { synced: true } });
    expect(decideDelivery(memory(t0, 1, true), delivery(t0, 1), { kind: "bulk" })).toMatchObject({ action: "skip" });
  });

  it("given a set without cleartext (hash-only), when it arrives, then it is remembered as unsyncable and not queued", () => {
    expect(decideDelivery(undefined, delivery(t0, 1, { hasClearText: false }), { kind: "live" })).toMatchObject({
      action: "remember",
      remember: { synced: false },
    });
  });

  it("given a deleted account, when it arrives, then it is skipped", () => {
    expect(decideDelivery(undefined, delivery(t0, 1, { isDeleted: true }), { kind: "live" })).toMatchObject({ action: "skip", reason: "account deleted" });
  });
});

describe("compareVersions", () => {
  it("orders by key version first (two writes in one tick), then by pwdLastSet; pwdLastSet 0 without a key version counts as newer", () => {
    expect(compareVersions({ pwdLastSet: t0, keyVersion: 3 }, { pwdLastSet: t0, keyVersion: 2 })).toBeGreaterThan(0);
    expect(compareVersions({ pwdLastSet: t0 }, { pwdLastSet: t0 + 1n })).toBeLessThan(0);
    expect(compareVersions({ pwdLastSet: 0n }, { pwdLastSet: t0 })).toBeGreaterThan(0);
    expect(compareVersions({ pwdLastSet: t0, keyVersion: 2 }, { pwdLastSet: t0, keyVersion: 2 })).toBe(0);
  });
});
