import { describe, expect, it } from "vitest";
import { WriteThrottle } from "./throttle.js";

describe("WriteThrottle", () => {
  it("allows the budget, then refuses with the time until the oldest write leaves the window", () => {
    let now = 1_000_000;
    const throttle = new WriteThrottle({ writes: 2, windowMs: 10_000 }, () => now);
    expect(throttle.tryWrite("app").allowed).toBe(true);
    now += 3_000;
    expect(throttle.tryWrite("app").allowed).toBe(true);
    expect(throttle.tryWrite("app")).toEqual({ allowed: false, retryAfterSeconds: 7 });
    expect(throttle.tryWrite("other-app").allowed).toBe(true);
    now += 7_000;
    expect(throttle.tryWrite("app").allowed).toBe(true);
  });
});
