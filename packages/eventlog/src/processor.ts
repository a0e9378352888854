import { randomUUID } from "node:crypto";
import type { Transaction } from "kysely";
import pg from "pg";
import { EVENTS_CHANNEL } from "./appendToStream.js";
import { readCheckpoint, storeCheckpoint } from "./checkpoints.js";
import type { EventLog } from "./open.js";
import { PARTITION_COUNT } from "./partition.js";
import { readPartitionBatch, type Position } from "./readPartitionBatch.js";
import type { Database } from "./schema.js";
import type { StoredEvent } from "./types.js";

/** Database writes that commit together with the consumer's checkpoint. */
export type Writes = (trx: Transaction<Database>) => Promise<void>;

export interface ProcessorLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface ProcessorOptions {
  /** Consumer group: replicas with the same group share the work. */
  group: string;
  eventTypes: readonly string[];
  /**
   * Handles one event. Side effects (HTTP calls, emails) happen here; the returned writes are
   * committed atomically with the checkpoint. Throwing means "try again later": the event is
   * retried with backoff and never skipped, so permanent failures must become events instead.
   */
  handle: (event: StoredEvent) => Promise<Writes | void>;
  batchSize?: number;
  /**
   * Handlers run at once within a partition (default 1). Events with the same partition key
   * are still handled one after the other, each after the previous one committed.
   */
  concurrency?: number;
  pollIntervalMs?: number;
  /** How often membership is refreshed and partitions rebalanced. */
  rebalanceIntervalMs?: number;
  memberId?: string;
  logger?: ProcessorLogger;
}

export interface Processor {
  readonly memberId: string;
  ownedPartitions(): number[];
  /** Events handled and committed by this member. */
  processedCount(): number;
  stop(): Promise<void>;
}

const silent: ProcessorLogger = { info() {}, warn() {}, error() {} };
const MEMBER_TTL_SECONDS = 5;

class CheckpointMismatch extends Error {}

function lockKey(group: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < group.length; i++) {
    hash ^= group.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash | 0;
}

function positionOf(event: StoredEvent): Position {
  return { transactionId: event.transactionId, globalPosition: event.globalPosition };
}

function samePosition(a: Position, b: Position): boolean {
  return a.transactionId === b.transactionId && a.globalPosition === b.globalPosition;
}

function isAfter(a: Position, b: Position): boolean {
  return a.transactionId > b.transactionId || (a.transactionId === b.transactionId && a.globalPosition > b.globalPosition);
}

interface PartitionWorker {
  partition: number;
  stopping: boolean;
  /** A wanted event was committed in this partition since the last read that found one. */
  notified: boolean;
  wake: () => void;
  done: Promise<void>;
}

/**
 * A consumer group member. Partitions are owned through session-level advisory locks held on a
 * dedicated connection, so a member that dies (even kill -9) frees its partitions the moment
 * its connection drops. Members share partitions evenly; within a partition events are handled
 * one at a time in commit order; the checkpoint moves by compare-and-set in the transaction
 * that commits the handler's writes, so an event's effects in the database happen exactly once.
 */
export async function startProcessor(log: EventLog, options: ProcessorOptions): Promise<Processor> {
  const memberId = options.memberId ?? `${process.pid}-${randomUUID().slice(0, 8)}`;
  const logger = options.logger ?? silent;
  const batchSize = options.batchSize ?? 200;
  const concurrency = Math.max(1, options.concurrency ?? 1);
  const wanted = new Set(options.eventTypes);
  const wakeAllDelayMs = 50;
  let wakeAllTimer: NodeJS.Timeout | undefined;
  const pollIntervalMs = options.pollIntervalMs ?? 250;
  const rebalanceIntervalMs = options.rebalanceIntervalMs ?? 1000;
  const key = lockKey(options.group);
  const workers = new Map<number, PartitionWorker>();
  let processed = 0;
  let stopped = false;
  let control: pg.Client | undefined;
  let freeLastTick = new Set<number>();
  let rebalanceTimer: NodeJS.Timeout | undefined;
  let ticking: Promise<void> = Promise.resolve();

  async function connectControl(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: log.connectionString, application_name: `pwsync-${options.group}-control` });
    client.on("error", (err) => {
      logger.warn({ err: err.message, group: options.group }, "control connection lost; releasing partitions");
      void onControlLost(client);
    });
    // A connection closed without an error (the server shut down cleanly) loses the locks too.
    client.on("end", () => void onControlLost(client));
    client.on("notification", (message) => {
      const [partition, types = ""] = (message.payload ?? "").split(":");
      const worker = workers.get(Number(partition));
      if (worker && (types === "" || types.split(",").some((type) => wanted.has(type)))) {
        worker.notified = true;
        worker.wake();
      }
      // Readers stop below the oldest running transaction cluster-wide, so any commit may be
      // what was hiding events already committed in other partitions, whose own notifications
      // found nothing readable (those workers are still `notified`). Waking them for each
      // commit would cost a query per commit under load; once per wakeAllDelayMs is enough.
      if (!wakeAllTimer) {
        wakeAllTimer = setTimeout(() => {
          wakeAllTimer = undefined;
          for (const w of workers.values()) if (w.notified) w.wake();
        }, wakeAllDelayMs);
      }
    });
    await client.connect();
    await client.query(`LISTEN ${EVENTS_CHANNEL}`);
    return client;
  }

  async function onControlLost(client: pg.Client): Promise<void> {
    if (control !== client) return;
    control = undefined;
    // The locks died with the connection: stop every worker; the checkpoint CAS keeps any
    // event a worker is finishing from being committed twice. They leave the map at once: they
    // own nothing any more, and the partitions may be re-taken before they finish.
    const lost = [...workers.values()];
    workers.clear();
    client.end().catch(() => {});
    await Promise.all(lost.map((w) => stopWorker(w)));
  }

  async function stopWorker(worker: PartitionWorker): Promise<void> {
    worker.stopping = true;
    worker.wake();
    await worker.done;
    // By now the partition may have a new worker (re-taken after a control connection drop):
    // removing that one would leave it running, holding the lock, unseen by rebalance and stop.
    if (workers.get(worker.partition) === worker) workers.delete(worker.partition);
  }

  function startWorker(partition: number): void {
    let wakeUp: () => void = () => {};
    let woken = false;
    const worker: PartitionWorker = {
      partition,
      stopping: false,
      notified: false,
      wake: () => {
        woken = true;
        wakeUp();
      },
      done: Promise.resolve(),
    };
    const sleep = (ms: number) =>
      new Promise<void>((resolve) => {
        if (woken || worker.stopping) {
          woken = false;
          resolve();
          return;
        }
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          wakeUp = () => {};
          woken = false;
          resolve();
        }
        wakeUp = done;
      });
    worker.done = runPartition(worker, sleep).catch((err: unknown) => {
      logger.error({ err: (err as Error).message, group: options.group, partition }, "partition worker crashed");
    });
    workers.set(partition, worker);
  }

  /** Sleeps up to `ms`, returning early once the worker is stopping. */
  async function pause(worker: PartitionWorker, ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (!worker.stopping && Date.now() < until) await new Promise((r) => setTimeout(r, Math.min(200, until - Date.now())));
  }

  async function handleWithRetry(event: StoredEvent, worker: PartitionWorker): Promise<Writes | void | typeof STOPPED> {
    for (let attempt = 1; ; attempt++) {
      if (attempt > 1 && worker.stopping) return STOPPED;
      try {
        return await options.handle(event);
      } catch (err) {
        const delay = Math.min(30_000, 100 * 2 ** Math.min(attempt, 9));
        logger.warn(
          { err: (err as Error).message, group: options.group, streamId: event.streamId, type: event.type, globalPosition: String(event.globalPosition), attempt, retryInMs: delay },
          "event handler failed; will retry",
        );
        await pause(worker, delay);
      }
    }
  }

  /**
   * Handles one batch of a partition. Up to `concurrency` handlers run at once, but events with
   * the same partition key wait until the previous one is committed (so a handler always sees
   * its predecessor's effects), and commits happen strictly in log order, several ready events
   * per transaction, each moving the checkpoint by compare-and-set.
   */
  async function processBatch(worker: PartitionWorker, events: StoredEvent[], from: Position): Promise<Position> {
    let checkpoint = from;
    let aborted = false;
    const committed = events.map(() => {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      return { promise, resolve };
    });
    const lastCommitOfKey = new Map<string, Promise<void>>();
    const settled = events.map(() => false);
    let running = 0;
    // On a graceful stop (shutdown, rebalance), every event up to the furthest one already
    // started is still finished and committed, so its side effects are not repeated by the
    // next owner; nothing after it starts.
    let furthestStarted = -1;
    const queue: Array<() => void> = [];
    const slot = async () => {
      while (running >= concurrency) await new Promise<void>((r) => queue.push(r));
      running++;
    };
    const results = events.map((event, i) => {
      const prior = lastCommitOfKey.get(event.partitionKey) ?? Promise.resolve();
      lastCommitOfKey.set(event.partitionKey, committed[i]!.promise);
      return (async () => {
        await prior;
        if (aborted) return STOPPED;
        await slot();
        try {
          if (aborted || (worker.stopping && i > furthestStarted)) return STOPPED;
          furthestStarted = Math.max(furthestStarted, i);
          return await handleWithRetry(event, worker);
        } finally {
          running--;
          queue.shift()?.();
          settled[i] = true;
        }
      })();
    });
    const abort = async () => {
      aborted = true;
      for (const c of committed) c.resolve();
      await Promise.allSettled(results);
    };
    try {
      let i = 0;
      while (i < events.length) {
        const group: Array<{ event: StoredEvent; writes: Writes | void }> = [];
        const first = await results[i]!;
        if (first === STOPPED) break;
        group.push({ event: events[i]!, writes: first });
        while (group.length < 64 && i + group.length < events.length && settled[i + group.length]) {
          const next = await results[i + group.length]!;
          if (next === STOPPED) break;
          group.push({ event: events[i + group.length]!, writes: next });
        }
        const to = positionOf(group.at(-1)!.event);
        await log.db.transaction().execute(async (trx) => {
          for (const { writes } of group) if (writes) await writes(trx);
          if ((await storeCheckpoint(trx, options.group, worker.partition, checkpoint, to)) === "mismatch") throw new CheckpointMismatch();
        });
        checkpoint = to;
        processed += group.length;
        for (let k = 0; k < group.length; k++) committed[i + k]!.resolve();
        i += group.length;
      }
    } finally {
      await abort();
    }
    return checkpoint;
  }

  async function runPartition(worker: PartitionWorker, sleep: (ms: number) => Promise<void>): Promise<void> {
    const { partition } = worker;
    let initial: Position | undefined;
    // A worker that crashed here would keep its partition's lock with nothing reading it.
    while (!initial) {
      if (worker.stopping) return;
      initial = await readCheckpoint(log.db, options.group, partition).catch((err: unknown) => {
        logger.warn({ err: (err as Error).message, group: options.group, partition }, "cannot read checkpoint; retrying");
        return undefined;
      });
      if (!initial) await sleep(pollIntervalMs * 4);
    }
    let checkpoint: Position = initial;
    while (!worker.stopping) {
      try {
        const notified = worker.notified;
        worker.notified = false;
        const batch = await readPartitionBatch(log.db, partition, checkpoint, options.eventTypes, batchSize);
        // Notified but nothing readable: held back by an older open transaction; stay pending.
        if (notified && batch.events.length === 0) worker.notified = true;
        if (!batch.scannedTo) {
          await sleep(pollIntervalMs);
          continue;
        }
        if (batch.events.length > 0) checkpoint = await processBatch(worker, batch.events, checkpoint);
        if (worker.stopping) return;
        if (isAfter(batch.scannedTo, checkpoint) && (batch.events.length === 0 || samePosition(checkpoint, positionOf(batch.events.at(-1)!)))) {
          if ((await storeCheckpoint(log.db, options.group, partition, checkpoint, batch.scannedTo)) === "mismatch") throw new CheckpointMismatch();
          checkpoint = batch.scannedTo;
        }
      } catch (err) {
        if (err instanceof CheckpointMismatch) {
          logger.warn({ group: options.group, partition }, "checkpoint moved under us (ownership changed); re-reading it");
        } else {
          logger.warn({ err: (err as Error).message, group: options.group, partition }, "partition read failed; retrying");
          await sleep(pollIntervalMs * 4);
        }
        checkpoint = await readCheckpoint(log.db, options.group, partition).catch(() => checkpoint);
      }
    }
  }

  async function rebalance(): Promise<void> {
    if (stopped) return;
    if (!control) {
      try {
        control = await connectControl();
      } catch (err) {
        logger.warn({ err: (err as Error).message, group: options.group }, "cannot connect control connection; will retry");
        return;
      }
    }
    const client = control;
    try {
      await client.query(
        `INSERT INTO consumer_members (group_name, member_id, heartbeat_at) VALUES ($1, $2, now())
         ON CONFLICT (group_name, member_id) DO UPDATE SET heartbeat_at = now()`,
        [options.group, memberId],
      );
      const alive = await client.query<{ n: string }>(
        `SELECT count(*) AS n FROM consumer_members WHERE group_name = $1 AND heartbeat_at > now() - make_interval(secs => $2)`,
        [options.group, MEMBER_TTL_SECONDS],
      );
      const members = Math.max(1, Number(alive.rows[0]?.n ?? 1));
      const target = Math.ceil(PARTITION_COUNT / members);
      const owned = [...workers.keys()].sort((a, b) => a - b);
      for (const partition of owned.slice(target)) {
        const worker = workers.get(partition);
        if (!worker) continue;
        await stopWorker(worker);
        await client.query("SELECT pg_advisory_unlock($1, $2)", [key, partition]);
        logger.info({ group: options.group, partition, members }, "released partition to rebalance");
      }
      const held = await client.query<{ objid: number }>(
        "SELECT objid::int AS objid FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND classid::int = $1 AND objsubid = 2 AND granted",
        [key],
      );
      const heldSet = new Set(held.rows.map((r) => r.objid));
      const free = new Set<number>();
      for (let p = 0; p < PARTITION_COUNT; p++) if (!heldSet.has(p)) free.add(p);
      const leftFree = new Set(free);
      for (const partition of free) {
        // Take our fair share; beyond it, only partitions nobody took since the last tick
        // (a member died), so a newcomer is not starved by a greedy veteran.
        if (workers.size >= target && !freeLastTick.has(partition)) continue;
        const got = await client.query<{ ok: boolean }>("SELECT pg_try_advisory_lock($1, $2) AS ok", [key, partition]);
        if (got.rows[0]?.ok) {
          startWorker(partition);
          leftFree.delete(partition);
          logger.info({ group: options.group, partition, members }, "acquired partition");
        }
      }
      // Only what stayed free after our own grabs: counting those too made a member that took
      // everything on its first tick re-take, in the very tick it released them, the partitions
      // it gave up for a newcomer, so the newcomer never got any.
      freeLastTick = leftFree;
    } catch (err) {
      logger.warn({ err: (err as Error).message, group: options.group }, "rebalance failed");
    }
  }

  function scheduleRebalance(): void {
    if (stopped) return;
    rebalanceTimer = setTimeout(() => {
      ticking = rebalance().finally(scheduleRebalance);
    }, rebalanceIntervalMs);
  }

  await rebalance();
  scheduleRebalance();

  return {
    memberId,
    ownedPartitions: () => [...workers.keys()].sort((a, b) => a - b),
    processedCount: () => processed,
    async stop() {
      stopped = true;
      clearTimeout(rebalanceTimer);
      clearTimeout(wakeAllTimer);
      await ticking;
      await Promise.all([...workers.values()].map((w) => stopWorker(w)));
      const client = control;
      control = undefined;
      if (client) {
        await client.query("DELETE FROM consumer_members WHERE group_name = $1 AND member_id = $2", [options.group, memberId]).catch(() => {});
        await client.end().catch(() => {});
      }
    },
  };
}

const STOPPED = Symbol("stopped");
