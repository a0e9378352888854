import { startRestartablePostgres, eventually, type RestartablePostgres } from "@pwsync/testkit";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { appendToStream } from "./appendToStream.js";
import { openEventLog, type EventLog } from "./open.js";
import { partitionOf } from "./partition.js";
import { startProcessor } from "./processor.js";

// A database restart or failover must not take a service down: every connection dies at once,
// including one checked out between two statements of a transaction and the consumer's control
// connection that holds the partition locks. These tests crash a Postgres server of their own.

let server: RestartablePostgres;
beforeAll(async () => {
  server = await startRestartablePostgres();
});
afterAll(async () => {
  await server?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freshLog(name: string): Promise<EventLog> {
  await server.createDatabase(name);
  return openEventLog(server.connectionString(name));
}

describe("a Postgres crash and restart", () => {
  it("fails the transaction that was open, leaves the process alive, and the next query reconnects", async () => {
    const log = await freshLog("checked_out");
    try {
      const failure = await log.db
        .transaction()
        .execute(async (trx) => {
          await sql`SELECT 1`.execute(trx);
          await server.crashAndRestart();
          await sql`SELECT 2`.execute(trx);
        })
        .then(
          () => undefined,
          (err: Error) => err,
        );
      expect(failure).toBeInstanceOf(Error);
      const after = await eventually(
        "a query succeeds after the restart",
        async () => (await sql<{ n: number }>`SELECT 41 + 1 AS n`.execute(log.db)).rows[0]?.n,
      );
      expect(after).toBe(42);
    } finally {
      await log.close();
    }
  });

  it("a consumer under load handles every event exactly once across it, and keeps every partition it locks in sight", async () => {
    const log = await freshLog("consumer");
    let slowStarted = false;
    let slowOnce = true;
    const processor = await startProcessor(log, {
      group: "g",
      eventTypes: ["Plain"],
      pollIntervalMs: 50,
      rebalanceIntervalMs: 200,
      memberId: "m",
      handle: async (event) => {
        if (event.streamId === "change-slow" && slowOnce) {
          // In flight across the crash: its worker finishes after the member re-took its partition.
          slowOnce = false;
          slowStarted = true;
          await sleep(4000);
        }
        return async (trx) => {
          await sql`INSERT INTO handled (global_position) VALUES (${String(event.globalPosition)})`.execute(trx);
        };
      },
    });
    try {
      // UNIQUE: a second commit of one event's writes fails instead of hiding.
      await sql`CREATE TABLE handled (global_position bigint PRIMARY KEY)`.execute(log.db);
      const append = async (streamId: string) => {
        const result = await appendToStream(log.db, streamId, [{ type: "Plain", data: {} }], { expectedVersion: "any" });
        if (!result.success) throw new Error("append failed");
      };
      await append("change-slow");
      await eventually("the slow event is in flight", async () => slowStarted);
      const writers = Array.from({ length: 4 }, (_, w) =>
        (async () => {
          let written = 0;
          for (let i = 0; i < 40; i++) {
            // Appends that fail while the server is down are retried: the writer rides it out too.
            for (;;) {
              try {
                await append(`change-${w}-${i % 9}`);
                written++;
                break;
              } catch {
                await sleep(100);
              }
            }
            await sleep(20);
          }
          return written;
        })(),
      );
      await sleep(300);
      await server.crashAndRestart();
      const written = (await Promise.all(writers)).reduce((a, b) => a + b, 0) + 1;

      await eventually(
        "every event handled",
        async () => (await sql<{ n: string }>`SELECT count(*) AS n FROM handled`.execute(log.db)).rows[0]?.n === String(written),
        60_000,
      );
      const unhandled = await sql<{
        n: string;
      }>`SELECT count(*) AS n FROM events e WHERE NOT EXISTS (SELECT 1 FROM handled h WHERE h.global_position = e.global_position)`.execute(log.db);
      expect(Number(unhandled.rows[0]?.n)).toBe(0);

      // Once the slow event's old worker is done, every partition locked by this member's
      // session is one it knows it owns (an unseen worker would hold its lock past stop()).
      await sleep(4500);
      const locked = await eventually("the member holds partitions again", async () => {
        const rows = await sql<{ p: number }>`
          SELECT objid::int AS p FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.granted AND a.application_name = 'pwsync-g-control'
           ORDER BY 1`.execute(log.db);
        return rows.rows.length > 0 ? rows.rows.map((r) => r.p) : undefined;
      });
      expect(locked).toContain(partitionOf("change-slow"));
      expect(processor.ownedPartitions()).toEqual(locked);
      await processor.stop();
      const after = await sql<{ n: string }>`SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2`.execute(log.db);
      expect(Number(after.rows[0]?.n)).toBe(0);
    } finally {
      await processor.stop().catch(() => {});
      await log.close();
    }
  });
});
