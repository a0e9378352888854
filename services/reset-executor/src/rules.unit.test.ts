import { describe, expect, it } from "vitest";
import { checkEntraPasswordRules } from "./password-rules.js";
import { backoffDelay, SlidingWindowLimiter } from "./rate-limiter.js";

describe("checkEntraPasswordRules", () => {
  it.each([
    ["Abcdef1!", true],
    ["abcdefg1!", true],
    ["ABCDEFG1a", true],
    ["Ab1!", false],
    ["abcdefgh1", false],
    ["ABCDEFGHIJ", false],
    ["Ünïcödé-Pass", true],
  ])("%s → %s", (password, ok) => {
    expect(checkEntraPasswordRules(password).ok).toBe(ok);
  });

  it("describes the shape, never the content", () => {
    const verdict = checkEntraPasswordRules("short");
    expect(verdict).toEqual({ ok: false, detail: "the new password has 5 characters; Entra ID requires at least 8" });
    const classes = checkEntraPasswordRules("alllowercase");
    expect(classes.ok).toBe(false);
    if (!classes.ok) expect(classes.detail).not.toContain("alllowercase");
  });

  it("refuses more than 256 characters", () => {
    expect(checkEntraPasswordRules("Aa1!".repeat(65)).ok).toBe(false);
  });
});

describe("SlidingWindowLimiter", () => {
  it("never allows more than the limit in any window", () => {
    let now = 0;
    const limiter = new SlidingWindowLimiter(3, 1000, () => now);
    const allowedAt: number[] = [];
    for (now = 0; now < 5000; now += 50) if (limiter.tryAcquire() === 0) allowedAt.push(now);
    for (const t of allowedAt) expect(allowedAt.filter((u) => u > t - 1000 && u <= t).length).toBeLessThanOrEqual(3);
    expect(allowedAt.length).toBeGreaterThanOrEqual(15);
  });

  it("pauses everything until a Retry-After has passed", () => {
    let now = 0;
    const limiter = new SlidingWindowLimiter(100, 1000, () => now);
    limiter.pauseUntil(2500);
    expect(limiter.tryAcquire()).toBe(2500);
    now = 2500;
    expect(limiter.tryAcquire()).toBe(0);
  });
});

describe("backoffDelay", () => {
  it("grows exponentially within the cap, with jitter", () => {
    expect(backoffDelay(1, 1000, 60_000, () => 1)).toBe(1000);
    expect(backoffDelay(4, 1000, 60_000, () => 1)).toBe(8000);
    expect(backoffDelay(20, 1000, 60_000, () => 1)).toBe(60_000);
    expect(backoffDelay(4, 1000, 60_000, () => 0)).toBe(500);
  });
});
