import { describe, expect, it } from "vitest";
import { appendRounds, appendRows } from "./appendToStream.js";
import { partitionOf } from "./partition.js";

describe("appendRows", () => {
  it("gives every stream its version rule and every event its place, partition and offset in its stream", () => {
    const rows = appendRows([
      {
        streamId: "s1",
        events: [
          { type: "A", data: { a: 1 } },
          { type: "B", data: {}, metadata: { actor: "x" } },
        ],
        expectedVersion: "no_stream",
      },
      { streamId: "s2", events: [{ type: "C", data: {} }], expectedVersion: 3, partitionKey: "user-9" },
      { streamId: "s3", events: [{ type: "D", data: {} }], expectedVersion: 0 },
      { streamId: "s4", events: [{ type: "E", data: {} }], expectedVersion: "any" },
    ]);
    expect(rows.streams).toEqual([
      { stream_id: "s1", rule: "create", expected: 0, count: 2 },
      { stream_id: "s2", rule: "expected", expected: 3, count: 1 },
      { stream_id: "s3", rule: "create", expected: 0, count: 1 },
      { stream_id: "s4", rule: "any", expected: 0, count: 1 },
    ]);
    expect(rows.events.map((e) => [e.stream_id, e.ord, e.seq, e.partition, e.partition_key, e.type, e.metadata])).toEqual([
      ["s1", 0, 0, partitionOf("s1"), "s1", "A", {}],
      ["s1", 1, 1, partitionOf("s1"), "s1", "B", { actor: "x" }],
      ["s2", 2, 0, partitionOf("user-9"), "user-9", "C", {}],
      ["s3", 3, 0, partitionOf("s3"), "s3", "D", {}],
      ["s4", 4, 0, partitionOf("s4"), "s4", "E", {}],
    ]);
  });

  it("refuses an append without events", () => {
    expect(() => appendRows([{ streamId: "s1", events: [], expectedVersion: "any" }])).toThrow(/no events/);
  });
});

describe("appendRounds", () => {
  it("puts each stream once per round, a repeated one in the next round, keeping every append's index", () => {
    const append = (streamId: string) => ({ streamId, events: [{ type: "A", data: {} }], expectedVersion: "any" as const });
    const rounds = appendRounds([append("s1"), append("s2"), append("s1"), append("s3"), append("s1")]);
    expect(rounds.map((round) => round.map((entry) => [entry.index, entry.append.streamId]))).toEqual([
      [
        [0, "s1"],
        [1, "s2"],
        [3, "s3"],
      ],
      [[2, "s1"]],
      [[4, "s1"]],
    ]);
  });
});
