import { describe, expect, it } from "vitest";
import { capturingLogger } from "../test-support/capturingLogger.js";
import { activeAlarms, QueueAlarms } from "./alarms.js";

const t = { queueAgeMs: 60_000, queueDepth: 100 };

describe("queue alarms", () => {
  it("raise on age and depth thresholds, not on an empty queue", () => {
    expect(activeAlarms({ depth: 0, oldestAgeMs: 10 ** 9 }, t)).toEqual([]);
    expect(activeAlarms({ depth: 1, oldestAgeMs: 60_000 }, t)).toEqual(["queueAge"]);
    expect(activeAlarms({ depth: 100, oldestAgeMs: 0 }, t)).toEqual(["queueDepth"]);
  });

  it("log when raised, repeat while active, and log the clearing", () => {
    const { logger, records } = capturingLogger();
    const alarms = new QueueAlarms(t, logger, 1000);
    alarms.check({ depth: 150, oldestAgeMs: 0 }, 0);
    alarms.check({ depth: 150, oldestAgeMs: 0 }, 500);
    alarms.check({ depth: 150, oldestAgeMs: 0 }, 1500);
    alarms.check({ depth: 3, oldestAgeMs: 0 }, 1600);
    expect(records().map((r) => r.msg)).toEqual([expect.stringMatching(/^ALARM raised/), "ALARM still active", "alarm cleared"]);
  });
});
