import { randomUUID } from "node:crypto";
import type { EventLog } from "./open.js";
import { PARTITION_COUNT } from "./partition.js";
import { PartitionOwnership } from "./partitionOwnership.js";
import { PartitionWorker, type Handler, type ProcessorLogger } from "./partitionWorker.js";
import { ThrottledWakeAll } from "./wakeups.js";

export type { AppendWrites, HandlerContext, Handler, HandlerResult, ProcessorLogger, Writes } from "./partitionWorker.js";

export interface ProcessorOptions {
  /** Consumer group: replicas with the same group share the work. */
  group: string;
  eventTypes: readonly string[];
  /**
   * Handles one event. Side effects (HTTP calls, emails) happen here; the returned writes are
   * committed atomically with the checkpoint. Throwing means "try again later": the event is
   * retried with backoff and never skipped, so permanent failures must become events instead.
   * The context's signal aborts when the member loses the partition; its fence proves the
   * ownership to the database (withFence) right before a side effect.
   */
  handle: Handler;
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

/**
 * A consumer group member: owns a fair share of the partitions (PartitionOwnership), runs one
 * PartitionWorker per owned partition, and wakes them when an append notifies. Within a
 * partition events are handled in commit order (runBatch); the checkpoint moves by
 * compare-and-set with the handler's writes, so an event's effects in the database happen
 * exactly once.
 */
export async function startProcessor(log: EventLog, options: ProcessorOptions): Promise<Processor> {
  const memberId = options.memberId ?? `${process.pid}-${randomUUID().slice(0, 8)}`;
  const logger = options.logger ?? silent;
  const group = options.group;
  const wanted = new Set(options.eventTypes);
  const rebalanceIntervalMs = options.rebalanceIntervalMs ?? 1000;
  const workers = new Map<number, PartitionWorker>();
  let processed = 0;
  let stopped = false;
  let freeLastTick = new Set<number>();
  let rebalanceTimer: NodeJS.Timeout | undefined;
  let ticking: Promise<void> = Promise.resolve();

  const wakeAll = new ThrottledWakeAll(5, () => {
    for (const w of workers.values()) if (w.notified) w.wake();
  });

  const ownership = new PartitionOwnership(log.connectionString, group, {
    notified(partition, types) {
      const worker = workers.get(partition);
      if (worker && (types.length === 0 || types.some((type) => wanted.has(type)))) {
        worker.notified = true;
        worker.wake();
      }
      wakeAll.poke();
    },
    lost(err) {
      logger.warn({ err: err?.message ?? "connection ended", group }, "control connection lost; releasing partitions");
      // The locks died with the connection. The workers leave the map at once (they own
      // nothing, and the partitions may be re-taken before they finish) and their in-flight
      // handlers are told to stop; the checkpoint CAS keeps them from committing twice and the
      // fence keeps them from side effects.
      const lost = [...workers.values()];
      workers.clear();
      void Promise.all(lost.map((w) => w.abandon()));
    },
  });

  async function stopWorker(worker: PartitionWorker): Promise<void> {
    await worker.stop();
    // By now the partition may have a new worker (re-taken after a control connection drop):
    // removing that one would leave it running, holding the lock, unseen by rebalance and stop.
    if (workers.get(worker.partition) === worker) workers.delete(worker.partition);
  }

  function startWorker(partition: number, token: bigint): void {
    const worker = new PartitionWorker(
      {
        log,
        group,
        eventTypes: options.eventTypes,
        handle: options.handle,
        batchSize: options.batchSize ?? 200,
        concurrency: Math.max(1, options.concurrency ?? 1),
        pollIntervalMs: options.pollIntervalMs ?? 250,
        logger,
        onCommitted: (count) => (processed += count),
      },
      { group, partition, token },
    );
    workers.set(partition, worker);
  }

  async function rebalance(): Promise<void> {
    if (stopped) return;
    try {
      await ownership.connect();
    } catch (err) {
      logger.warn({ err: (err as Error).message, group }, "cannot connect control connection; will retry");
      return;
    }
    try {
      const members = await ownership.heartbeat(memberId);
      const target = Math.ceil(PARTITION_COUNT / members);
      const owned = [...workers.keys()].sort((a, b) => a - b);
      for (const partition of owned.slice(target)) {
        const worker = workers.get(partition);
        if (!worker) continue;
        await stopWorker(worker);
        await ownership.release(partition);
        logger.info({ group, partition, members }, "released partition to rebalance");
      }
      const locked = await ownership.lockedByAnyone();
      const free = new Set<number>();
      for (let p = 0; p < PARTITION_COUNT; p++) if (!locked.has(p)) free.add(p);
      const leftFree = new Set(free);
      for (const partition of free) {
        // Take our fair share; beyond it, only partitions nobody took since the last tick
        // (a member died), so a newcomer is not starved by a greedy veteran.
        if (workers.size >= target && !freeLastTick.has(partition)) continue;
        const token = await ownership.tryAcquire(partition);
        if (token !== undefined) {
          startWorker(partition, token);
          leftFree.delete(partition);
          logger.info({ group, partition, members, fence: String(token) }, "acquired partition");
        }
      }
      // Only what stayed free after our own grabs: counting those too made a member that took
      // everything on its first tick re-take, in the very tick it released them, the partitions
      // it gave up for a newcomer, so the newcomer never got any.
      freeLastTick = leftFree;
    } catch (err) {
      logger.warn({ err: (err as Error).message, group }, "rebalance failed");
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
      wakeAll.cancel();
      await ticking;
      await Promise.all([...workers.values()].map((w) => stopWorker(w)));
      await ownership.close(memberId);
    },
  };
}
