import { create } from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { compareChanges, orderKey, supersededBy, type OrderFacts } from "./ordering.js";

const at = (seconds: bigint, nanos = 0) => create(TimestampSchema, { seconds, nanos });
const pwdLastSet = at(1_795_780_800n);
const change = (over: Partial<OrderFacts>): OrderFacts => ({
  changeId: "00000000-0000-8000-8000-000000000000",
  domainController: "dc01.corp.example",
  captureSequence: 1n,
  changedAt: pwdLastSet,
  ...over,
});

describe("ordering of one user's changes", () => {
  it("given two changes sharing pwdLastSet (an older one drained from the spool after a newer one), when compared, then the capture time decides and the older loses", () => {
    const older = change({ changeId: "a", capturedAt: at(1_795_780_790n), captureSequence: 10n });
    const newer = change({ changeId: "b", capturedAt: at(1_795_780_799n), captureSequence: 11n });
    expect(compareChanges(older, newer)).toBeLessThan(0);
    expect(supersededBy(orderKey(older), orderKey(newer))).toBe(true);
    expect(supersededBy(orderKey(newer), orderKey(older))).toBe(false);
  });

  it("given the same user changed on two DCs 300 ns apart, when compared, then the later capture wins whatever the DC names", () => {
    const first = change({ changeId: "z", domainController: "dc99", capturedAt: at(1_795_780_800n, 100), captureSequence: 900n });
    const second = change({ changeId: "a", domainController: "dc01", capturedAt: at(1_795_780_800n, 400), captureSequence: 1n });
    expect(compareChanges(first, second)).toBeLessThan(0);
  });

  it("given two DCs with the exact same capture time, when compared in either order, then the same one wins (DC name), and never both", () => {
    const one = change({ changeId: "b", domainController: "DC01.corp.example", capturedAt: at(1_795_780_800n, 5) });
    const two = change({ changeId: "a", domainController: "dc02.corp.example", capturedAt: at(1_795_780_800n, 5) });
    expect(compareChanges(one, two)).toBeLessThan(0);
    expect(compareChanges(two, one)).toBeGreaterThan(0);
    expect(supersededBy(orderKey(one), orderKey(two)) !== supersededBy(orderKey(two), orderKey(one))).toBe(true);
  });

  it("given one DC and the same capture time, when compared, then the filter's sequence decides", () => {
    const earlier = change({ changeId: "b", capturedAt: at(1n), captureSequence: 0xfffffffffn });
    const later = change({ changeId: "a", capturedAt: at(1n), captureSequence: 0x1000000000n });
    expect(compareChanges(earlier, later)).toBeLessThan(0);
  });

  it("given DC names where one is a prefix of the other, when compared, then the shorter sorts first whatever follows it", () => {
    const a = change({ domainController: "dc1", capturedAt: at(1n), captureSequence: 0xffn });
    const b = change({ domainController: "dc10", capturedAt: at(1n), captureSequence: 0n });
    expect(compareChanges(a, b)).toBeLessThan(0);
  });

  it("given everything equal but the change id, when compared, then still a strict order (a tie never lets both through)", () => {
    const a = change({ changeId: "11111111-0000-8000-8000-000000000000", capturedAt: at(1n) });
    const b = change({ changeId: "22222222-0000-8000-8000-000000000000", capturedAt: at(1n) });
    expect(compareChanges(a, b)).toBeLessThan(0);
    expect(compareChanges(a, { ...a })).toBe(0);
    expect(supersededBy(orderKey(a), orderKey(a))).toBe(false);
  });

  it("given a change from an older agent without a capture time, when compared, then changed_at stands in", () => {
    const old = change({ changeId: "a", changedAt: at(100n) });
    const current = change({ changeId: "b", capturedAt: at(99n) });
    expect(compareChanges(current, old)).toBeLessThan(0);
  });

  it("given no known newer change, then nothing supersedes", () => {
    expect(supersededBy(orderKey(change({})), undefined)).toBe(false);
  });
});
