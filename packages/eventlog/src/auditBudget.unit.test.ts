import { describe, expect, it } from "vitest";
import { auditBudget } from "./auditBudget.js";

function harness(perMinute: number, failWrites = false) {
  let clock = 0;
  const written: Array<{ record: string; suppressedBefore: number }> = [];
  const errors: string[] = [];
  const budget = auditBudget<string>({
    perMinute,
    now: () => clock,
    write: async (record, suppressedBefore) => {
      if (failWrites) throw new Error("database down");
      written.push({ record, suppressedBefore });
    },
    onWriteError: (err) => errors.push(err.message),
  });
  return { budget, written, errors, advance: (ms: number) => (clock += ms) };
}

describe("auditBudget: refused calls recorded without letting a scanner grow the log", () => {
  it("given room in the minute, writes each record", async () => {
    const h = harness(2);
    await h.budget.record("a");
    await h.budget.record("b");
    expect(h.written).toEqual([
      { record: "a", suppressedBefore: 0 },
      { record: "b", suppressedBefore: 0 },
    ]);
  });

  it("given the minute's budget is spent, counts the rest and reports the count on the next record written", async () => {
    const h = harness(1);
    await h.budget.record("a");
    await h.budget.record("b");
    await h.budget.record("c");
    h.advance(60_000);
    await h.budget.record("d");
    expect(h.written).toEqual([
      { record: "a", suppressedBefore: 0 },
      { record: "d", suppressedBefore: 2 },
    ]);
  });

  it("given a write fails, says so and counts that record as suppressed", async () => {
    const h = harness(5, true);
    await h.budget.record("a");
    expect(h.errors).toEqual(["database down"]);
    expect(h.written).toEqual([]);
  });
});
