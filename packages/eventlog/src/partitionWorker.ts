import type { Transaction } from "kysely";
import { appendToStreams, type AppendResult, type StreamAppend } from "./appendToStream.js";
import { runBatch, STOPPED } from "./batchScheduler.js";
import { readCheckpoint, storeCheckpoint } from "./checkpoints.js";
import type { Fence } from "./fence.js";
import type { EventLog } from "./open.js";
import { readPartitionBatch, START, type Position } from "./readPartitionBatch.js";
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

/**
 * Appends that commit with the consumer's checkpoint in one statement together with the other
 * events' appends of the same commit (instead of two per event); `afterAppend` then runs in that
 * transaction with their outcomes, in the order of `appends`.
 */
export interface AppendWrites {
  appends: StreamAppend[];
  afterAppend?: (trx: Transaction<Database>, results: AppendResult[]) => Promise<void>;
}

export type HandlerResult = Writes | AppendWrites | void;

export type Handler = (event: StoredEvent, context: HandlerContext) => Promise<HandlerResult>;

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

/**
 * First look again after a read held back by an older open transaction: those are commits in
 * flight, a few milliseconds long, so a longer first wait only adds latency to every step.
 */
const PENDING_RETRY_MS = 4;
/** Longest the checkpoint row lags behind events that left nothing to commit, while events keep coming. */
const UNRECORDED_CHECKPOINT_MS = 1000;

function positionOf(event: StoredEvent): Position {
  return { transactionId: event.transactionId, globalPosition: event.globalPosition };
}

function isAfter(a: Position, b: Position): boolean {
  return a.transactionId > b.transactionId || (a.transactionId === b.transactionId && a.globalPosition > b.globalPosition);
}

/** Every appending handler's appends in one statement, then each handler's remaining writes in log order. */
async function commitWrites(trx: Transaction<Database>, results: HandlerResult[]): Promise<void> {
  const appending = results.filter((r): r is AppendWrites => typeof r === "object" && r !== null);
  const outcomes = await appendToStreams(
    trx,
    appending.flatMap((r) => r.appends),
  );
  let at = 0;
  for (const result of results) {
    if (typeof result === "function") await result(trx);
    else if (result) {
      const mine = outcomes.slice(at, at + result.appends.length);
      at += result.appends.length;
      await result.afterAppend?.(trx, mine);
    }
  }
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
  /** What the partition's checkpoint row holds: the base of every compare-and-set. */
  private stored: Position = START;
  /** How far this worker has handled; ahead of `stored` by events that left nothing to commit. */
  private reached: Position = START;
  private storedAt = 0;
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

  private async handleWithRetry(event: StoredEvent): Promise<HandlerResult | typeof STOPPED> {
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

  /**
   * Handles the batch's events and commits their writes with the checkpoint; the commit of the
   * last one also moves the checkpoint past the unwanted events scanned after it (`scannedTo`).
   * Events that leave nothing to commit (their handler committed its own effects, or had none)
   * only move `reached`. Stops short of the end if the worker is stopping.
   */
  private async processBatch(events: StoredEvent[], scannedTo: Position): Promise<void> {
    const { log, group, concurrency } = this.settings;
    const last = events.at(-1);
    await runBatch<StoredEvent, HandlerResult>({
      events,
      keyOf: (event) => event.partitionKey,
      concurrency,
      run: (event) => this.handleWithRetry(event),
      stopping: () => this.stopping,
      commit: async (done) => {
        const lastDone = done.at(-1)!.event;
        const to = lastDone === last ? scannedTo : positionOf(lastDone);
        const results = done.map((d) => d.result);
        if (results.every((result) => !result)) {
          await this.advance(to);
        } else {
          await log.db.transaction().execute(async (trx) => {
            await commitWrites(trx, results);
            if ((await storeCheckpoint(trx, group, this.partition, this.stored, to)) === "mismatch") throw new CheckpointMismatch();
          });
          this.stored = this.reached = to;
          this.storedAt = Date.now();
        }
        this.settings.onCommitted(done.length);
      },
    });
  }

  /**
   * Moves `reached` past events that left nothing to commit. Recording that in the checkpoint
   * row waits until the partition goes quiet, the worker stops, or a second has passed: a
   * checkpoint write per read would cost a commit (a WAL flush) each, and a new owner that
   * starts a little early merely skips those events again, or finds their effects committed.
   */
  private async advance(to: Position): Promise<void> {
    this.reached = to;
    if (Date.now() - this.storedAt >= UNRECORDED_CHECKPOINT_MS) await this.storeReached();
  }

  private async storeReached(): Promise<void> {
    if (!isAfter(this.reached, this.stored)) return;
    const { log, group } = this.settings;
    if ((await storeCheckpoint(log.db, group, this.partition, this.stored, this.reached)) === "mismatch") throw new CheckpointMismatch();
    this.stored = this.reached;
    this.storedAt = Date.now();
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
    this.stored = this.reached = initial;
    this.storedAt = Date.now();
    let pendingRetryMs = PENDING_RETRY_MS;
    while (!this.stopping) {
      try {
        const notified = this.notified;
        this.notified = false;
        const batch = await readPartitionBatch(log.db, partition, this.reached, eventTypes, batchSize);
        // Notified but nothing readable: held back by an older open transaction; stay pending.
        if (notified && batch.events.length === 0) this.notified = true;
        if (!batch.scannedTo) {
          await this.storeReached();
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
        if (batch.events.length > 0) await this.processBatch(batch.events, batch.scannedTo);
        else await this.advance(batch.scannedTo);
      } catch (err) {
        if (err instanceof CheckpointMismatch) {
          logger.warn({ group, partition }, "checkpoint moved under us (ownership changed); re-reading it");
        } else {
          logger.warn({ err: (err as Error).message, group, partition }, "partition read failed; retrying");
          await this.wakeup.sleep(pollIntervalMs * 4);
        }
        this.stored = this.reached = await readCheckpoint(log.db, group, partition).catch(() => this.stored);
      }
    }
    // A graceful stop hands over where it got to; a lost partition is its new owner's business.
    if (!this.lost.signal.aborted) await this.storeReached().catch(() => {});
  }
}
