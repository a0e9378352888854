import type { Transaction } from "kysely";
import { runBatch, STOPPED } from "./batchScheduler.js";
import { readCheckpoint, storeCheckpoint } from "./checkpoints.js";
import type { Fence } from "./fence.js";
import type { EventLog } from "./open.js";
import { readPartitionBatch, type Position } from "./readPartitionBatch.js";
import type { Database } from "./schema.js";
import type { StoredEvent } from "./types.js";
import { Wakeup } from "./wakeups.js";

/** Database writes that commit together with the consumer's checkpoint. */
export type Writes = (trx: Transaction<Database>) => Promise<void>;

export interface HandlerContext {
  /** Aborted when this member lost the partition: stop, and perform no further side effect. */
  signal: AbortSignal;
  /** Check it (withFence) immediately before a side effect another owner could repeat out of order. */
  fence: Fence;
}

export type Handler = (event: StoredEvent, context: HandlerContext) => Promise<Writes | void>;

export interface ProcessorLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface WorkerSettings {
  log: EventLog;
  group: string;
  eventTypes: readonly string[];
  handle: Handler;
  batchSize: number;
  concurrency: number;
  pollIntervalMs: number;
  logger: ProcessorLogger;
  /** Called with the number of events each commit covered. */
  onCommitted(count: number): void;
}

class CheckpointMismatch extends Error {}

const PENDING_RETRY_MS = 100;

function positionOf(event: StoredEvent): Position {
  return { transactionId: event.transactionId, globalPosition: event.globalPosition };
}

function samePosition(a: Position, b: Position): boolean {
  return a.transactionId === b.transactionId && a.globalPosition === b.globalPosition;
}

function isAfter(a: Position, b: Position): boolean {
  return a.transactionId > b.transactionId || (a.transactionId === b.transactionId && a.globalPosition > b.globalPosition);
}

/**
 * Reads one owned partition in commit order and hands its events to the batch scheduler; the
 * checkpoint moves by compare-and-set in the transaction that commits the handlers' writes.
 */
export class PartitionWorker {
  private stopping = false;
  /** A wanted event was committed in this partition since the last read that found one. */
  notified = false;
  private readonly wakeup = new Wakeup();
  private readonly lost = new AbortController();
  readonly done: Promise<void>;

  constructor(
    private readonly settings: WorkerSettings,
    readonly fence: Fence,
  ) {
    this.done = this.run().catch((err: unknown) => {
      settings.logger.error({ err: (err as Error).message, group: settings.group, partition: fence.partition }, "partition worker crashed");
    });
  }

  get partition(): number {
    return this.fence.partition;
  }

  wake(): void {
    this.wakeup.wake();
  }

  /** Graceful: finishes what it started (so a handover repeats no side effect), starts nothing new. */
  stop(): Promise<void> {
    this.stopping = true;
    this.wakeup.stop();
    return this.done;
  }

  /** Ownership is gone: in-flight handlers are told to give up at once. */
  abandon(): Promise<void> {
    this.lost.abort(new Error(`partition ${this.partition} of ${this.settings.group} was lost`));
    return this.stop();
  }

  /** Sleeps up to `ms`, returning early once the worker is stopping. */
  private async pause(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (!this.stopping && Date.now() < until) await new Promise((r) => setTimeout(r, Math.min(200, until - Date.now())));
  }

  private async handleWithRetry(event: StoredEvent): Promise<Writes | void | typeof STOPPED> {
    const { logger, group, handle } = this.settings;
    for (let attempt = 1; ; attempt++) {
      if (this.lost.signal.aborted || (attempt > 1 && this.stopping)) return STOPPED;
      try {
        return await handle(event, { signal: this.lost.signal, fence: this.fence });
      } catch (err) {
        if (this.lost.signal.aborted) return STOPPED;
        const delay = Math.min(30_000, 100 * 2 ** Math.min(attempt, 9));
        logger.warn(
          {
            err: (err as Error).message,
            group,
            streamId: event.streamId,
            type: event.type,
            globalPosition: String(event.globalPosition),
            attempt,
            retryInMs: delay,
          },
          "event handler failed; will retry",
        );
        await this.pause(delay);
      }
    }
  }

  private async processBatch(events: StoredEvent[], from: Position): Promise<Position> {
    const { log, group, concurrency } = this.settings;
    let checkpoint = from;
    await runBatch<StoredEvent, Writes | void>({
      events,
      keyOf: (event) => event.partitionKey,
      concurrency,
      run: (event) => this.handleWithRetry(event),
      stopping: () => this.stopping,
      commit: async (done) => {
        const to = positionOf(done.at(-1)!.event);
        await log.db.transaction().execute(async (trx) => {
          for (const { result } of done) if (result) await result(trx);
          if ((await storeCheckpoint(trx, group, this.partition, checkpoint, to)) === "mismatch") throw new CheckpointMismatch();
        });
        checkpoint = to;
        this.settings.onCommitted(done.length);
      },
    });
    return checkpoint;
  }

  private async run(): Promise<void> {
    const { log, group, eventTypes, batchSize, pollIntervalMs, logger } = this.settings;
    const partition = this.partition;
    let initial: Position | undefined;
    // A worker that crashed here would keep its partition's lock with nothing reading it.
    while (!initial) {
      if (this.stopping) return;
      initial = await readCheckpoint(log.db, group, partition).catch((err: unknown) => {
        logger.warn({ err: (err as Error).message, group, partition }, "cannot read checkpoint; retrying");
        return undefined;
      });
      if (!initial) await this.wakeup.sleep(pollIntervalMs * 4);
    }
    let checkpoint: Position = initial;
    let pendingRetryMs = PENDING_RETRY_MS;
    while (!this.stopping) {
      try {
        const notified = this.notified;
        this.notified = false;
        const batch = await readPartitionBatch(log.db, partition, checkpoint, eventTypes, batchSize);
        // Notified but nothing readable: held back by an older open transaction; stay pending.
        if (notified && batch.events.length === 0) this.notified = true;
        if (!batch.scannedTo) {
          // Notified but held back by an open transaction, possibly in another database of the
          // cluster (xids are cluster-wide) whose commit notifies nobody here: look again soon
          // rather than a whole poll interval later.
          // Backing off: a notification whose event an earlier read already took stays pending too.
          if (this.notified) {
            await this.wakeup.sleep(Math.min(pollIntervalMs, pendingRetryMs));
            pendingRetryMs *= 2;
          } else {
            await this.wakeup.sleep(pollIntervalMs);
          }
          continue;
        }
        pendingRetryMs = PENDING_RETRY_MS;
        if (batch.events.length > 0) checkpoint = await this.processBatch(batch.events, checkpoint);
        if (this.stopping) return;
        if (isAfter(batch.scannedTo, checkpoint) && (batch.events.length === 0 || samePosition(checkpoint, positionOf(batch.events.at(-1)!)))) {
          if ((await storeCheckpoint(log.db, group, partition, checkpoint, batch.scannedTo)) === "mismatch") throw new CheckpointMismatch();
          checkpoint = batch.scannedTo;
        }
      } catch (err) {
        if (err instanceof CheckpointMismatch) {
          logger.warn({ group, partition }, "checkpoint moved under us (ownership changed); re-reading it");
        } else {
          logger.warn({ err: (err as Error).message, group, partition }, "partition read failed; retrying");
          await this.wakeup.sleep(pollIntervalMs * 4);
        }
        checkpoint = await readCheckpoint(log.db, group, partition).catch(() => checkpoint);
      }
    }
  }
}
