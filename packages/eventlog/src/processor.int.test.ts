import { createTestDatabase, eventually } from "@pwsync/testkit";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { sql, type Kysely } from "kysely";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { appendToStream } from "./appendToStream.js";
import { readStream } from "./readStream.js";
import { openEventLog, type EventLog } from "./open.js";
import { PARTITION_COUNT, partitionOf } from "./partition.js";
import { FencedOut, withFence } from "./fence.js";
import { startProcessor, type HandlerContext, type Processor, type ProcessorOptions, type Writes } from "./processor.js";
import type { Database } from "./schema.js";
import type { StoredEvent } from "./types.js";

const EVENT_TYPES = ["Plain", "Flaky", "Hang"];
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function openLog(connectionString: string): Promise<EventLog> {
  const log = await openEventLog(connectionString);
  cleanups.push(() => log.close());
  return log;
}

/** A fresh database with the event log and a `processed` table the handlers write to. */
async function freshDatabase(prefix: string): Promise<{ connectionString: string; log: EventLog }> {
  const connectionString = await createTestDatabase(prefix);
  const log = await openLog(connectionString);
  // UNIQUE(global_position): a second commit of one event's writes fails instead of hiding.
  await sql`
    CREATE TABLE processed (
      seq bigserial PRIMARY KEY,
      global_position bigint NOT NULL UNIQUE,
      member_id text NOT NULL,
      stream_id text NOT NULL,
      stream_version integer NOT NULL
    )`.execute(log.db);
  return { connectionString, log };
}

async function start(log: EventLog, options: Pick<ProcessorOptions, "group" | "handle"> & Partial<ProcessorOptions>): Promise<Processor> {
  const processor = await startProcessor(log, { eventTypes: EVENT_TYPES, pollIntervalMs: 50, rebalanceIntervalMs: 200, ...options });
  cleanups.push(() => processor.stop());
  return processor;
}

/** Every handler call, in call order, across all members of a test. */
interface Invocation {
  memberId: string;
  globalPosition: bigint;
}

function recordProcessed(memberId: string, event: StoredEvent): Writes {
  return async (trx) => {
    await sql`INSERT INTO processed (global_position, member_id, stream_id, stream_version)
              VALUES (${String(event.globalPosition)}, ${memberId}, ${event.streamId}, ${event.streamVersion})`.execute(trx);
  };
}

function recordingHandler(memberId: string, invocations: Invocation[]): ProcessorOptions["handle"] {
  return async (event) => {
    invocations.push({ memberId, globalPosition: event.globalPosition });
    return recordProcessed(memberId, event);
  };
}

interface ProcessedRow {
  globalPosition: bigint;
  memberId: string;
  streamId: string;
  streamVersion: number;
}

async function processedRows(db: Kysely<Database>): Promise<ProcessedRow[]> {
  const result = await sql<{ global_position: string; member_id: string; stream_id: string; stream_version: number }>`
    SELECT global_position, member_id, stream_id, stream_version FROM processed ORDER BY seq`.execute(db);
  return result.rows.map((r) => ({ globalPosition: BigInt(r.global_position), memberId: r.member_id, streamId: r.stream_id, streamVersion: r.stream_version }));
}

async function processedCount(db: Kysely<Database>): Promise<number> {
  const result = await sql<{ n: string }>`SELECT count(*) AS n FROM processed`.execute(db);
  return Number(result.rows[0]?.n);
}

async function checkpointOf(db: Kysely<Database>, group: string, partition: number): Promise<{ transactionId: bigint; globalPosition: bigint }> {
  const row = await db
    .selectFrom("consumer_checkpoints")
    .select(["transaction_id", "global_position"])
    .where("group_name", "=", group)
    .where("partition", "=", partition)
    .executeTakeFirstOrThrow();
  return { transactionId: BigInt(row.transaction_id), globalPosition: BigInt(row.global_position) };
}

async function positionOf(db: Kysely<Database>, globalPosition: bigint): Promise<{ transactionId: bigint; globalPosition: bigint }> {
  const row = await db.selectFrom("events").select("transaction_id").where("global_position", "=", String(globalPosition)).executeTakeFirstOrThrow();
  return { transactionId: BigInt(row.transaction_id), globalPosition };
}

async function appended(db: Kysely<Database>, streamId: string, types: string[], partitionKey?: string): Promise<bigint[]> {
  const result = await appendToStream(
    db,
    streamId,
    types.map((type) => ({ type, data: {} })),
    { expectedVersion: "any", partitionKey },
  );
  if (!result.success) throw new Error(`append to ${streamId} failed`);
  return result.globalPositions;
}

/** Several concurrent writers, each appending batches of 1–3 events to streams shared with the others. */
async function appendUnderLoad(db: Kysely<Database>, writers: number, eventsPerWriter: number, streams: number, prefix: string): Promise<number> {
  await Promise.all(
    Array.from({ length: writers }, async (_, writer) => {
      for (let written = 0, batch = 0; written < eventsPerWriter; batch++) {
        const count = Math.min(1 + ((writer + batch) % 3), eventsPerWriter - written);
        const streamId = `${prefix}-${(writer * 7 + batch * 13) % streams}`;
        await appended(
          db,
          streamId,
          Array.from({ length: count }, () => "Plain"),
        );
        written += count;
      }
    }),
  );
  return writers * eventsPerWriter;
}

async function expectEveryEventProcessedExactlyOnce(db: Kysely<Database>, total: number, invocations: Invocation[]): Promise<ProcessedRow[]> {
  const rows = await processedRows(db);
  expect(rows).toHaveLength(total);
  const missing = await sql<{ n: string }>`
    SELECT count(*) AS n FROM events e WHERE NOT EXISTS (SELECT 1 FROM processed p WHERE p.global_position = e.global_position)`.execute(db);
  expect(Number(missing.rows[0]?.n)).toBe(0);
  // The database refuses a second commit; the handler must not even have been asked twice.
  const calls = new Map<bigint, number>();
  for (const invocation of invocations) calls.set(invocation.globalPosition, (calls.get(invocation.globalPosition) ?? 0) + 1);
  expect(calls.size).toBe(total);
  expect([...calls.values()].filter((n) => n !== 1)).toEqual([]);
  return rows;
}

function expectPerStreamOrder(rows: ProcessedRow[]): void {
  const versionsByStream = new Map<string, number[]>();
  for (const row of rows) versionsByStream.set(row.streamId, [...(versionsByStream.get(row.streamId) ?? []), row.streamVersion]);
  for (const [streamId, versions] of versionsByStream) {
    expect({ streamId, versions }).toEqual({ streamId, versions: versions.map((_, i) => i + 1) });
  }
}

function expectBalancedOwnership(members: Processor[]): boolean {
  const owned = members.map((m) => m.ownedPartitions());
  const all = owned.flat().sort((a, b) => a - b);
  return owned.every((partitions) => partitions.length > 0) && all.length === PARTITION_COUNT && new Set(all).size === PARTITION_COUNT;
}

describe("processor", () => {
  it("waits for an older transaction that commits late instead of skipping its event", async () => {
    const { log } = await freshDatabase("late");
    const invocations: Invocation[] = [];
    await start(log, { group: "late", handle: recordingHandler("m1", invocations) });
    const partitionKey = "user-late"; // A and B share a partition, so their order is defined

    const older = await log.db.startTransaction().execute();
    let olderDone = false;
    cleanups.push(async () => olderDone || older.rollback().execute());
    const [a] = await appended(older, "change-a", ["Plain"], partitionKey);
    const [b] = await appended(log.db, "change-b", ["Plain"], partitionKey);
    expect(a! < b!).toBe(true);

    // The hazard: a reader going by position alone sees B, moves its checkpoint past it...
    const naiveFirst = await sql<{ global_position: string }>`SELECT global_position FROM events WHERE global_position > 0 ORDER BY global_position`.execute(
      log.db,
    );
    expect(naiveFirst.rows.map((r) => BigInt(r.global_position))).toEqual([b]);
    const naiveCheckpoint = b!;

    await sleep(500); // many poll intervals: the processor had every chance to take B
    expect(invocations).toEqual([]);
    expect(await processedCount(log.db)).toBe(0);

    await older.commit().execute();
    olderDone = true;
    // ...and, once A commits, never sees A, whose position is below that checkpoint.
    const naiveAfter = await sql`SELECT global_position FROM events WHERE global_position > ${String(naiveCheckpoint)}`.execute(log.db);
    expect(naiveAfter.rows).toEqual([]);

    await eventually("A and B processed", async () => (await processedCount(log.db)) === 2);
    await sleep(200); // a redelivery would show up here
    const rows = await processedRows(log.db);
    expect(rows.map((r) => r.globalPosition)).toEqual([a, b]);
    expect(invocations.map((i) => i.globalPosition)).toEqual([a, b]);
    const [positionA, positionB] = [await positionOf(log.db, a!), await positionOf(log.db, b!)];
    expect(positionA.transactionId < positionB.transactionId).toBe(true);
    expect(await checkpointOf(log.db, "late", partitionOf(partitionKey))).toEqual(positionB);
  });

  it("two replicas under load share the partitions and never process an event twice", async () => {
    const { connectionString, log } = await freshDatabase("share");
    const invocations: Invocation[] = [];
    const members = await Promise.all(
      ["m1", "m2"].map(async (memberId) =>
        start(await openLog(connectionString), { group: "share", memberId, handle: recordingHandler(memberId, invocations) }),
      ),
    );

    const total = await appendUnderLoad(log.db, 8, 260, 64, "change-share");
    expect(total).toBeGreaterThanOrEqual(2000);
    await eventually("every event processed", async () => (await processedCount(log.db)) >= total, 40_000);
    await sleep(300); // a duplicate or late redelivery would show up here

    const rows = await expectEveryEventProcessedExactlyOnce(log.db, total, invocations);
    expectPerStreamOrder(rows);
    await eventually("partitions split between both members", async () => expectBalancedOwnership(members), 5_000);
    const byMember = new Map(rows.map((r) => [r.memberId, 0]));
    for (const row of rows) byMember.set(row.memberId, byMember.get(row.memberId)! + 1);
    expect([...byMember.keys()].sort()).toEqual(["m1", "m2"]);
    expect(members.map((m) => m.processedCount())).toEqual([byMember.get("m1"), byMember.get("m2")]);
  });

  it("a replica that stops hands its partitions to the survivor", async () => {
    const { connectionString, log } = await freshDatabase("handover");
    const invocations: Invocation[] = [];
    const [survivor, leaver] = await Promise.all(
      ["survivor", "leaver"].map(async (memberId) =>
        start(await openLog(connectionString), { group: "handover", memberId, handle: recordingHandler(memberId, invocations) }),
      ),
    );
    await eventually("partitions split between both members", async () => expectBalancedOwnership([survivor!, leaver!]), 5_000);

    const load = appendUnderLoad(log.db, 6, 250, 48, "change-handover");
    await eventually("some events processed", async () => (await processedCount(log.db)) >= 300);
    await leaver!.stop();
    expect(leaver!.ownedPartitions()).toEqual([]);
    const total = await load;

    await eventually("survivor owns every partition", async () => survivor!.ownedPartitions().length === PARTITION_COUNT, 5_000);
    await eventually("every event processed", async () => (await processedCount(log.db)) >= total, 40_000);
    await sleep(300);

    const rows = await expectEveryEventProcessedExactlyOnce(log.db, total, invocations);
    expectPerStreamOrder(rows);
    const leaverRows = rows.filter((r) => r.memberId === "leaver").length;
    expect(leaverRows).toBeGreaterThan(0);
    expect(leaverRows).toBe(leaver!.processedCount());
    expect(leaverRows).toBeLessThan(total);
  });

  it("a consumer killed mid-event redoes it after restart", async () => {
    const { connectionString, log } = await freshDatabase("killed");
    await sql`CREATE TABLE started_markers (global_position bigint NOT NULL, pid integer NOT NULL)`.execute(log.db);
    const positions = await appended(log.db, "change-kill", ["Plain", "Plain", "Hang", "Plain", "Plain"]);
    const hang = positions[2]!;

    const fixture = fileURLToPath(new URL("./test-fixtures/hangingConsumer.ts", import.meta.url));
    const child = spawn(process.execPath, ["--import", "tsx", fixture, connectionString, "killed"], { stdio: ["ignore", "ignore", "pipe"] });
    const exited = once(child, "exit");
    let childErrors = "";
    child.stderr.on("data", (chunk: Buffer) => (childErrors += chunk.toString()));
    cleanups.push(async () => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"));

    const marker = await eventually(`child began the Hang event${childErrors ? ` (child stderr: ${childErrors})` : ""}`, async () => {
      const result = await sql<{ pid: number }>`SELECT pid FROM started_markers WHERE global_position = ${String(hang)}`.execute(log.db);
      return result.rows[0];
    });
    expect(marker.pid).toBe(child.pid);
    // Events before the hanging one are done; the hanging one and those after it are not.
    expect((await processedRows(log.db)).map((r) => r.globalPosition)).toEqual(positions.slice(0, 2));

    child.kill("SIGKILL");
    const [, signal] = await exited;
    expect(signal).toBe("SIGKILL");

    // The partition locks lived on the dead process's connection, so they go with it.
    await eventually(
      "the killed member's advisory locks released",
      async () => {
        const locks = await sql<{ n: string }>`
          SELECT count(*) AS n FROM pg_locks
           WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`.execute(log.db);
        return Number(locks.rows[0]?.n) === 0;
      },
      5_000,
    );

    const invocations: Invocation[] = [];
    const restarted = await start(log, { group: "killed", memberId: "restarted", handle: recordingHandler("restarted", invocations) });
    await eventually("every event processed after restart", async () => (await processedCount(log.db)) === positions.length);
    await eventually("restarted member owns every partition", async () => restarted.ownedPartitions().length === PARTITION_COUNT, 5_000);
    await sleep(200);

    const rows = await processedRows(log.db);
    expect(rows.map((r) => r.globalPosition)).toEqual(positions);
    expect(rows.filter((r) => r.globalPosition === hang)).toEqual([expect.objectContaining({ memberId: "restarted" })]);
    expect(invocations.map((i) => i.globalPosition)).toEqual(positions.slice(2));
    const markers = await sql`SELECT pid FROM started_markers`.execute(log.db);
    expect(markers.rows).toEqual([{ pid: child.pid }]);
  });

  it("a member that loses its partitions mid-event cannot commit that event after the new owner did", async () => {
    const { connectionString, log } = await freshDatabase("zombie");
    // No unique constraint here: only the checkpoint compare-and-set can stop the second commit.
    await sql`CREATE TABLE effects (global_position bigint NOT NULL, member_id text NOT NULL)`.execute(log.db);
    const positions = await appended(log.db, "change-zombie", ["Plain", "Plain"]);
    const effect =
      (memberId: string, event: StoredEvent): Writes =>
      async (trx) => {
        await sql`INSERT INTO effects (global_position, member_id) VALUES (${String(event.globalPosition)}, ${memberId})`.execute(trx);
      };

    let releaseZombie = () => {};
    const zombieGate = new Promise<void>((resolve) => (releaseZombie = resolve));
    let zombieStarted = false;
    const warnings: string[] = [];
    const zombieLog = await openLog(connectionString);
    await start(zombieLog, {
      group: "zombie",
      memberId: "zombie",
      // No reconnect during the test: a zombie that re-took its partition first would keep it.
      rebalanceIntervalMs: 60_000,
      logger: { info() {}, error() {}, warn: (_obj, msg) => warnings.push(msg) },
      handle: async (event) => {
        zombieStarted = true;
        await zombieGate;
        return effect("zombie", event);
      },
    });
    cleanups.push(async () => releaseZombie());
    await eventually("zombie began the first event", async () => zombieStarted);

    // Its control connection (and with it every partition lock) dies while the handler runs.
    await sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pwsync-zombie-control' AND datname = current_database()`.execute(
      log.db,
    );
    await start(await openLog(connectionString), { group: "zombie", memberId: "successor", handle: async (event) => effect("successor", event) });
    await eventually("successor processed both events", async () => {
      const rows = await sql`SELECT 1 FROM effects WHERE member_id = 'successor'`.execute(log.db);
      return rows.rows.length === 2;
    });

    releaseZombie();
    await eventually("zombie's commit refused by the checkpoint", async () => warnings.some((w) => w.includes("checkpoint moved under us")));
    const effects = await sql<{ global_position: string; member_id: string }>`SELECT global_position, member_id FROM effects ORDER BY global_position`.execute(
      log.db,
    );
    expect(effects.rows.map((r) => [BigInt(r.global_position), r.member_id])).toEqual(positions.map((p) => [p, "successor"]));
  });

  it("a member that loses its partition is told to stop its in-flight handler, and its fence is refused once another member took over", async () => {
    const { connectionString, log } = await freshDatabase("fenced");
    await appended(log.db, "change-a", ["Plain"], "user-u");
    await appended(log.db, "change-b", ["Plain"], "user-u");
    const sideEffects: string[] = [];
    // A side effect done only under the fence, as the reset-executor PATCHes Graph.
    const fencedEffect = async (memberId: string, event: StoredEvent, context: HandlerContext) => {
      await withFence(log.db, context.fence, async () => {
        sideEffects.push(`${memberId} ${event.streamId}`);
      });
    };
    let releaseX = () => {};
    const xGate = new Promise<void>((resolve) => (releaseX = resolve));
    cleanups.push(async () => releaseX());
    let xContext: HandlerContext | undefined;
    let xOutcome: unknown;
    await start(await openLog(connectionString), {
      group: "fenced",
      memberId: "x",
      rebalanceIntervalMs: 60_000,
      handle: async (event, context) => {
        // X's first handler is slow (a budget wait, a Retry-After) and outlives X's ownership.
        xContext = context;
        await xGate;
        xOutcome = await fencedEffect("x", event, context).then(
          () => "performed",
          (err: Error) => err,
        );
      },
    });
    await eventually("x began change-a", async () => xContext);
    await sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pwsync-fenced-control' AND datname = current_database()`.execute(
      log.db,
    );
    await eventually("x was told it lost the partition", async () => xContext!.signal.aborted);
    await start(await openLog(connectionString), { group: "fenced", memberId: "y", handle: async (event, context) => fencedEffect("y", event, context) });
    await eventually("y handled both changes", async () => sideEffects.length === 2);

    releaseX();
    await eventually("x's handler finished", async () => xOutcome);
    expect(xOutcome).toBeInstanceOf(FencedOut);
    expect(sideEffects).toEqual(["y change-a", "y change-b"]);
  });

  it("retries a throwing handler and keeps the checkpoint before its event until it succeeds", async () => {
    const { log } = await freshDatabase("retry");
    const partitionKey = "user-retry";
    const partition = partitionOf(partitionKey);
    const [before, flaky, after] = await appended(log.db, "change-retry", ["Plain", "Flaky", "Plain"], partitionKey);
    let downstreamUp = false;
    let flakyCalls = 0;
    await start(log, {
      group: "retry",
      memberId: "m1",
      handle: async (event) => {
        if (event.type === "Flaky") {
          flakyCalls++;
          if (!downstreamUp) throw new Error("downstream unavailable");
        }
        return recordProcessed("m1", event);
      },
    });

    await eventually("the failing event retried", async () => flakyCalls >= 2);
    expect((await processedRows(log.db)).map((r) => r.globalPosition)).toEqual([before]);
    expect(await checkpointOf(log.db, "retry", partition)).toEqual(await positionOf(log.db, before!));

    const failedCalls = flakyCalls;
    downstreamUp = true;
    await eventually("all three processed", async () => (await processedCount(log.db)) === 3);
    expect((await processedRows(log.db)).map((r) => r.globalPosition)).toEqual([before, flaky, after]);
    expect(flakyCalls).toBe(failedCalls + 1);
    expect(await checkpointOf(log.db, "retry", partition)).toEqual(await positionOf(log.db, after!));
  });

  describe("wake-up", () => {
    /** Inserts an event the way appendToStream does, minus the NOTIFY. */
    async function appendSilently(db: Kysely<Database>, streamId: string, partitionKey: string): Promise<bigint> {
      return db.transaction().execute(async (trx) => {
        await sql`INSERT INTO streams (stream_id, version) VALUES (${streamId}, 1)`.execute(trx);
        const result = await sql<{ global_position: string }>`
          INSERT INTO events (stream_id, stream_version, partition, partition_key, type, data)
          VALUES (${streamId}, 1, ${partitionOf(partitionKey)}, ${partitionKey}, 'Plain', '{}')
          RETURNING global_position`.execute(trx);
        return BigInt(result.rows[0]!.global_position);
      });
    }

    async function idleProcessor(log: EventLog, group: string, pollIntervalMs: number): Promise<void> {
      const processor = await start(log, { group, memberId: "m1", pollIntervalMs, handle: recordingHandler("m1", []) });
      await eventually("all partitions owned", async () => processor.ownedPartitions().length === PARTITION_COUNT, 5_000);
      await eventually("every partition read once", async () => {
        const rows = await log.db.selectFrom("consumer_checkpoints").select("partition").where("group_name", "=", group).execute();
        return rows.length === PARTITION_COUNT;
      });
      await sleep(300); // let each worker finish its first (empty) read and go to sleep
    }

    it("wakes on NOTIFY: events are processed promptly although the poll interval is a minute", async () => {
      const { log } = await freshDatabase("notify");
      await idleProcessor(log, "notify", 60_000);

      // A silent insert is not seen while the worker sleeps; the next notified append to the
      // same partition wakes it, and it takes both.
      const silent = await appendSilently(log.db, "change-silent", "user-quiet");
      await sleep(700);
      expect(await processedCount(log.db)).toBe(0);
      const [notified] = await appended(log.db, "change-notified", ["Plain"], "user-quiet");
      await eventually("woken by the notification", async () => (await processedCount(log.db)) === 2, 40_000); // well under the 60 s poll: only the notification can explain it
      expect((await processedRows(log.db)).map((r) => r.globalPosition)).toEqual([silent, notified]);

      for (let i = 0; i < 3; i++) {
        const [position] = await appended(log.db, `change-notify-${i}`, ["Plain"]);
        await eventually(`event ${i} processed`, async () => (await processedRows(log.db)).some((r) => r.globalPosition === position), 40_000);
      }
    });

    it("an event held back by an older transaction in another partition is processed as soon as that one commits, not a poll interval later", async () => {
      const { log } = await freshDatabase("horizon");
      await idleProcessor(log, "horizon", 60_000);
      const [olderKey, newerKey] = ["user-a", "user-b"];
      expect(partitionOf(olderKey)).not.toBe(partitionOf(newerKey));

      const older = await log.db.startTransaction().execute();
      let olderDone = false;
      cleanups.push(async () => olderDone || older.rollback().execute());
      const [a] = await appended(older, "change-a", ["Plain"], olderKey);
      // B's notification arrives while A still holds the read horizon back, so B's partition
      // finds nothing to read then; only A's commit can tell it B is now readable.
      const [b] = await appended(log.db, "change-b", ["Plain"], newerKey);
      await sleep(500);
      expect(await processedCount(log.db)).toBe(0);

      await older.commit().execute();
      olderDone = true;
      await eventually("both processed", async () => (await processedCount(log.db)) === 2, 10_000);
      expect((await processedRows(log.db)).map((r) => r.globalPosition).sort()).toEqual([a, b].sort());
    });

    it("an event held back by a transaction open in another database is processed soon after that commits, although no notification follows", async () => {
      const { log } = await freshDatabase("crossdb");
      await idleProcessor(log, "crossdb", 60_000);
      // Transaction ids are cluster-wide: an open writer anywhere holds every reader back, and
      // its commit notifies nobody in this database.
      const other = new pg.Client(await createTestDatabase("crossdb_other"));
      await other.connect();
      cleanups.push(() => other.end());
      await other.query("BEGIN");
      await other.query("SELECT pg_current_xact_id()");
      const [position] = await appended(log.db, "change-held", ["Plain"]);
      await sleep(500);
      expect((await processedRows(log.db)).map((r) => r.globalPosition)).toEqual([]);
      await other.query("COMMIT");
      await eventually(
        "processed after the other database's commit",
        async () => (await processedRows(log.db)).some((r) => r.globalPosition === position),
        10_000,
      );
    });

    it("falls back to polling: an event committed without a notification is still processed", async () => {
      const { log } = await freshDatabase("poll");
      await idleProcessor(log, "poll", 100);
      const silent = await appendSilently(log.db, "change-silent", "user-quiet");
      await eventually("picked up by polling", async () => (await processedCount(log.db)) === 1, 10_000);
      expect((await processedRows(log.db)).map((r) => r.globalPosition)).toEqual([silent]);
    });
  });

  it("moves the checkpoint past events of other types: with the last handled event's commit, and on its own once the partition is quiet", async () => {
    const { log } = await freshDatabase("skip");
    const invocations: Invocation[] = [];
    await start(log, { group: "skip", memberId: "m1", handle: recordingHandler("m1", invocations) });
    // One partition key: wanted, then unwanted events behind it in the same partition.
    const [wanted] = await appended(log.db, "skip-1", ["Plain"], "key-a");
    const others = await appended(log.db, "skip-2", ["Other", "Other"], "key-a");
    const partition = partitionOf("key-a");
    const lastOther = await positionOf(log.db, others.at(-1)!);
    await eventually("checkpoint past the other events", async () => {
      const at = await checkpointOf(log.db, "skip", partition);
      return at.transactionId === lastOther.transactionId && at.globalPosition === lastOther.globalPosition;
    });
    expect(invocations.map((i) => i.globalPosition)).toEqual([wanted]);
    // Only others this time: nothing to handle, and the checkpoint still follows.
    const onlyOthers = await appended(log.db, "skip-3", ["Other"], "key-a");
    const later = await positionOf(log.db, onlyOthers[0]!);
    await eventually("checkpoint past an unhandled-only stretch", async () => {
      const at = await checkpointOf(log.db, "skip", partition);
      return at.globalPosition === later.globalPosition;
    });
    expect(invocations).toHaveLength(1);
  });

  it("commits handlers' appends together with the checkpoint and tells each handler its own outcomes", async () => {
    const { log } = await freshDatabase("appendwrites");
    const outcomes = new Map<string, boolean[]>();
    await start(log, {
      group: "appendwrites",
      memberId: "m1",
      handle: async (event) => ({
        appends: [
          { streamId: `${event.streamId}-out`, events: [{ type: "Out", data: { from: String(event.globalPosition) } }], expectedVersion: "no_stream" },
          // Already exists: this one conflicts, and only its handler hears of it.
          { streamId: event.streamId, events: [{ type: "Never", data: {} }], expectedVersion: 0 },
        ],
        afterAppend: async (trx, results) => {
          outcomes.set(
            event.streamId,
            results.map((r) => r.success),
          );
          await recordProcessed("m1", event)(trx);
        },
      }),
    });
    const streams = ["aw-1", "aw-2", "aw-3"];
    for (const streamId of streams) await appended(log.db, streamId, ["Plain"]);
    await eventually("every event handled", async () => (await processedCount(log.db)) === streams.length);
    for (const streamId of streams) {
      expect(outcomes.get(streamId)).toEqual([true, false]);
      expect((await readStream(log.db, `${streamId}-out`)).map((e) => e.type)).toEqual(["Out"]);
      expect((await readStream(log.db, streamId)).map((e) => e.type)).toEqual(["Plain"]);
    }
  });

  it("runs handlers of different partition keys concurrently but one key's events after each other's commit", async () => {
    const { log } = await freshDatabase("concurrent");
    const keys = Array.from({ length: 6 }, (_, k) => `user-${k}`);
    for (let i = 0; i < 120; i++) {
      const key = keys[i % keys.length]!;
      await appendToStream(log.db, `change-conc-${i}`, [{ type: "Plain", data: { key, i } }], { expectedVersion: "no_stream", partitionKey: key });
    }
    let inFlight = 0;
    let maxInFlight = 0;
    const violations: string[] = [];
    const handledPerKey = new Map<string, number[]>();
    await start(log, {
      group: "concurrent",
      concurrency: 8,
      handle: async (event) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        const { key, i } = event.data as { key: string; i: number };
        // The previous event of this key must already be committed when this one starts.
        const previous = handledPerKey.get(key)?.at(-1);
        if (previous !== undefined) {
          const row = await sql<{ n: string }>`SELECT count(*) AS n FROM processed WHERE stream_id = ${`change-conc-${previous}`}`.execute(log.db);
          if (Number(row.rows[0]!.n) !== 1) violations.push(`${key}: event ${i} started before ${previous} was committed`);
        }
        handledPerKey.set(key, [...(handledPerKey.get(key) ?? []), i]);
        await sleep(5);
        inFlight--;
        return recordProcessed("solo", event);
      },
    });
    await eventually("all processed", async () => (await processedCount(log.db)) === 120, 30_000);
    expect(violations).toEqual([]);
    for (const [key, order] of handledPerKey) expect({ key, order }).toEqual({ key, order: [...order].sort((a, b) => a - b) });
    expect(maxInFlight).toBeGreaterThan(1);
  });
});
