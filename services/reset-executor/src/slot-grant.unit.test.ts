import { describe, expect, it } from "vitest";
import { grantSlots, paceFor } from "./slot-grant.js";

const window = (used: number, oldestLeavesInMs: number | null = null) => ({ limit: 30, used, oldestLeavesInMs, lengthMs: 10_000 });
const pace = (used: number, oldestLeavesInMs: number | null = null) => ({ limit: 3, used, oldestLeavesInMs, lengthMs: 1_000 });

describe("grantSlots", () => {
  it("given an empty budget, when three writers ask, then all three go now", () => {
    expect(grantSlots({ wanted: 3, pausedMs: null, window: window(0), pace: pace(0) })).toEqual([0, 0, 0]);
  });

  it("given room in the window, when more writers ask than the pace allows, then a tenth goes now and the rest wait for the pace window", () => {
    expect(grantSlots({ wanted: 10, pausedMs: null, window: window(0), pace: pace(0) })).toEqual([0, 0, 0, ...Array(7).fill(1_000)]);
    expect(grantSlots({ wanted: 4, pausedMs: null, window: window(12, 4_000), pace: pace(2, 300) })).toEqual([0, 300, 300, 300]);
  });

  it("given a full window, when writers ask, then none goes and all wait for its oldest write to leave, whatever the pace", () => {
    expect(grantSlots({ wanted: 2, pausedMs: null, window: window(30, 2_500), pace: pace(0) })).toEqual([2_500, 2_500]);
    expect(grantSlots({ wanted: 2, pausedMs: null, window: window(29, 2_500), pace: pace(0) })).toEqual([0, 2_500]);
  });

  it("given a Retry-After pause, when writers ask, then all wait out the pause even with room everywhere", () => {
    expect(grantSlots({ wanted: 2, pausedMs: 7_000, window: window(0), pace: pace(0) })).toEqual([7_000, 7_000]);
  });

  it("given no pacing, when a whole window's worth asks at once, then the whole window goes in one burst", () => {
    expect(grantSlots({ wanted: 31, pausedMs: null, window: window(0), pace: undefined }).filter((w) => w === 0)).toHaveLength(30);
  });

  it("never waits 0 ms for a writer it did not grant (a clock at the window's edge rounds to at least 1 ms)", () => {
    expect(grantSlots({ wanted: 2, pausedMs: null, window: window(30, 0), pace: pace(0) })).toEqual([1, 1]);
  });
});

describe("paceFor", () => {
  it("paces to a tenth of the writes in a tenth of the window, at least one write", () => {
    expect(paceFor(2850, 150_000)).toEqual({ limit: 285, windowMs: 15_000 });
    expect(paceFor(30, 10_000)).toEqual({ limit: 3, windowMs: 1_000 });
    expect(paceFor(5, 60_000)).toEqual({ limit: 1, windowMs: 6_000 });
  });
});
