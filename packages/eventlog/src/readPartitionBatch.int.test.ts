import { createTestDatabase } from "@pwsync/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { appendToStream } from "./appendToStream.js";
import { openEventLog, type EventLog } from "./open.js";
import { partitionOf } from "./partition.js";
import { readPartitionBatch, START } from "./readPartitionBatch.js";

let log: EventLog;
beforeAll(async () => {
  log = await openEventLog(await createTestDatabase("readbatch"));
});
afterAll(() => log.close());

describe("readPartitionBatch", () => {
  it("returns the wanted events of the scanned stretch, with their data, and the position of the last event scanned", async () => {
    const key = "read-key";
    const appended = await appendToStream(
      log.db,
      "read-1",
      [
        { type: "Wanted", data: { n: 1 }, metadata: { actor: "test" } },
        { type: "Other", data: { n: 2 } },
        { type: "Wanted", data: { n: 3 } },
        { type: "Other", data: { n: 4 } },
        { type: "Other", data: { n: 5 } },
      ],
      { expectedVersion: "no_stream", partitionKey: key },
    );
    if (!appended.success) throw new Error("append failed");
    const positions = appended.globalPositions;
    const partition = partitionOf(key);

    const all = await readPartitionBatch(log.db, partition, START, ["Wanted"], 10);
    expect(all.events.map((e) => [e.globalPosition, e.type, e.data, e.metadata])).toEqual([
      [positions[0], "Wanted", { n: 1 }, { actor: "test" }],
      [positions[2], "Wanted", { n: 3 }, {}],
    ]);
    expect(all.scannedTo?.globalPosition).toBe(positions[4]);

    // The limit counts events scanned, wanted or not.
    const firstTwo = await readPartitionBatch(log.db, partition, START, ["Wanted"], 2);
    expect(firstTwo.events.map((e) => e.globalPosition)).toEqual([positions[0]]);
    expect(firstTwo.scannedTo?.globalPosition).toBe(positions[1]);

    const none = await readPartitionBatch(log.db, partition, all.scannedTo!, ["Wanted"], 10);
    expect(none).toEqual({ events: [], scannedTo: null });
  });
});
