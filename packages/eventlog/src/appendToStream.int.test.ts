import { createTestDatabase } from "@pwsync/testkit";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { appendToStream, describeConflict } from "./appendToStream.js";
import { openEventLog, type EventLog } from "./open.js";
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
