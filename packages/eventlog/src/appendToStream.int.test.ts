import { createTestDatabase } from "@pwsync/testkit";
import { sql } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { appendToStream, appendToStreams, describeConflict, EVENTS_CHANNEL } from "./appendToStream.js";
import { openEventLog, type EventLog } from "./open.js";
import { partitionOf } from "./partition.js";
import { readStream } from "./readStream.js";

let log: EventLog;
beforeAll(async () => {
  log = await openEventLog(await createTestDatabase("append"));
});
afterAll(() => log.close());

describe("appendToStream", () => {
  it("appends in order and reports the next version", async () => {
    const first = await appendToStream(log.db, "change-a", [{ type: "One", data: { n: 1 } }], { expectedVersion: "no_stream" });
    expect(first).toMatchObject({ success: true, nextVersion: 1 });
    const second = await appendToStream(
      log.db,
      "change-a",
      [
        { type: "Two", data: { n: 2 } },
        { type: "Three", data: { n: 3 } },
      ],
      { expectedVersion: 1 },
    );
    expect(second).toMatchObject({ success: true, nextVersion: 3 });
    const events = await readStream(log.db, "change-a");
    expect(events.map((e) => [e.type, e.streamVersion])).toEqual([
      ["One", 1],
      ["Two", 2],
      ["Three", 3],
    ]);
  });

  it("returns a conflict, not an exception, for a wrong expected version and stores nothing", async () => {
    await appendToStream(log.db, "change-b", [{ type: "One", data: {} }], { expectedVersion: "no_stream" });
    const again = await appendToStream(log.db, "change-b", [{ type: "Dup", data: {} }], { expectedVersion: "no_stream" });
    expect(again).toEqual({ success: false, streamId: "change-b", expectedVersion: "no_stream", actualVersion: 1 });
    const stale = await appendToStream(log.db, "change-b", [{ type: "Stale", data: {} }], { expectedVersion: 5 });
    expect(stale.success).toBe(false);
    if (!stale.success) expect(describeConflict(stale)).toBe("Wrong expected version: 5 (Stream: change-b, Stream Version: 1)");
    expect((await readStream(log.db, "change-b")).map((e) => e.type)).toEqual(["One"]);
  });

  it("lets exactly one of two concurrent appenders with the same expected version win", async () => {
    await appendToStream(log.db, "change-c", [{ type: "One", data: {} }], { expectedVersion: "no_stream" });
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => appendToStream(log.db, "change-c", [{ type: `Racer${i}`, data: {} }], { expectedVersion: 1 })),
    );
    expect(results.filter((r) => r.success)).toHaveLength(1);
    expect(await readStream(log.db, "change-c")).toHaveLength(2);
  });

  it("is append-only: the database refuses UPDATE, DELETE and TRUNCATE on events", async () => {
    await appendToStream(log.db, "change-d", [{ type: "One", data: { keep: true } }], { expectedVersion: "no_stream" });
    await expect(sql`UPDATE events SET type = 'Forged' WHERE stream_id = 'change-d'`.execute(log.db)).rejects.toThrow(/append-only: UPDATE refused/);
    await expect(sql`DELETE FROM events WHERE stream_id = 'change-d'`.execute(log.db)).rejects.toThrow(/append-only: DELETE refused/);
    await expect(sql`TRUNCATE events CASCADE`.execute(log.db)).rejects.toThrow(/append-only: TRUNCATE refused/);
    expect((await readStream(log.db, "change-d"))[0]?.type).toBe("One");
  });
});

describe("appendToStreams", () => {
  it("appends to several streams in one call, each by its own expected version, and reports each outcome in order", async () => {
    await appendToStream(log.db, "multi-existing", [{ type: "One", data: {} }], { expectedVersion: "no_stream" });
    await appendToStream(log.db, "multi-stale", [{ type: "One", data: {} }], { expectedVersion: "no_stream" });
    const results = await appendToStreams(log.db, [
      {
        streamId: "multi-new",
        events: [
          { type: "A", data: { n: 1 } },
          { type: "B", data: { n: 2 } },
        ],
        expectedVersion: "no_stream",
      },
      { streamId: "multi-existing", events: [{ type: "Two", data: {} }], expectedVersion: 1, partitionKey: "user-1" },
      { streamId: "multi-stale", events: [{ type: "Lost", data: {} }], expectedVersion: 7 },
      { streamId: "multi-any", events: [{ type: "Any", data: {} }], expectedVersion: "any" },
    ]);
    expect(results.map((r) => (r.success ? r.nextVersion : `conflict at ${r.actualVersion}`))).toEqual([2, 2, "conflict at 1", 1]);
    const positions = results.flatMap((r) => (r.success ? r.globalPositions : []));
    expect(positions).toHaveLength(4);
    expect([...positions].sort((a, b) => (a < b ? -1 : 1))).toEqual(positions);
    const created = await readStream(log.db, "multi-new");
    expect(created.map((e) => [e.type, e.streamVersion, e.data])).toEqual([
      ["A", 1, { n: 1 }],
      ["B", 2, { n: 2 }],
    ]);
    const bumped = await readStream(log.db, "multi-existing");
    expect(bumped.map((e) => [e.type, e.streamVersion, e.partitionKey, e.partition])).toEqual([
      ["One", 1, "multi-existing", partitionOf("multi-existing")],
      ["Two", 2, "user-1", partitionOf("user-1")],
    ]);
    expect((await readStream(log.db, "multi-stale")).map((e) => e.type)).toEqual(["One"]);
  });

  it("notifies each appended event's partition and type once the transaction commits, not before", async () => {
    const listener = new pg.Client({ connectionString: log.connectionString });
    await listener.connect();
    const payloads: string[] = [];
    listener.on("notification", (message) => payloads.push(message.payload ?? ""));
    await listener.query(`LISTEN ${EVENTS_CHANNEL}`);
    try {
      await log.db.transaction().execute(async (trx) => {
        await appendToStreams(trx, [
          { streamId: "notify-a", events: [{ type: "Seen", data: {} }], expectedVersion: "no_stream" },
          {
            streamId: "notify-b",
            events: [
              { type: "Seen", data: {} },
              { type: "Also", data: {} },
            ],
            expectedVersion: "no_stream",
            partitionKey: "user-n",
          },
        ]);
        await sql`SELECT pg_sleep(0.2)`.execute(trx);
        expect(payloads).toEqual([]);
      });
      const expected = [`${partitionOf("notify-a")}:Seen`, `${partitionOf("user-n")}:Seen`, `${partitionOf("user-n")}:Also`];
      for (let i = 0; i < 50 && payloads.length < new Set(expected).size; i++) await new Promise((r) => setTimeout(r, 50));
      expect(new Set(payloads)).toEqual(new Set(expected));
    } finally {
      await listener.end();
    }
  });
});
