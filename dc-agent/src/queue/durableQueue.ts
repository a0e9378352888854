import { closeSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, rmSync, statSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "@pwsync/log";
import { encodeChangeRecord, encodeDoneRecord, type CorruptRange, type DoneReasonName } from "./record.js";
import { SegmentReader, withSegmentFile } from "./segmentReader.js";

/**
 * The agent's durable queue (the seed's statedb): append-only segment files of checksummed
 * records, fsynced before an append resolves. An entry leaves the queue when a "done" record
 * for it is written (after ingest's commit ack); whole segments are deleted once every entry
 * in them and in all older segments is done. Memory holds per-segment counters and the done
 * marks above the lowest live entry, never the queued changes themselves.
 */

const SEGMENT_NAME = /^([0-9a-f]{16})\.seg$/;

interface Segment {
  firstSeq: number;
  file: string;
  /** Bytes of intact records; readers never look past it. */
  size: number;
  changes: number;
  done: number;
  /** Highest change seq in this segment, -1 when none yet. */
  lastSeq: number;
}

export interface QueueEntry {
  seq: number;
  enqueuedAt: Date;
  /** The serialized PasswordChange (password sealed). */
  change: Buffer;
}

export interface QueueOptions {
  segmentBytes: number;
  logger: Logger;
}

type Pending = { bytes: Buffer; resolve(): void; reject(err: Error): void };

export class DurableQueue {
  private readonly segments: Segment[] = [];
  private active!: Segment;
  private handle!: FileHandle;
  private nextSeq = 0;
  /** One past the highest change seq already written; names the next segment. */
  private writtenSeqEnd = 0;
  /** Done seqs at or above `lowWater`; entries below `lowWater` are all done. */
  private readonly doneAbove = new Set<number>();
  private lowWater = 0;
  private liveCount = 0;
  private pending: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private waiters: (() => void)[] = [];
  private headCache: { seq: number; enqueuedAt: Date } | undefined;
  /** Where the last sequential read stopped, so the sender's next batch does not rescan. */
  private cursor: { segment: Segment; offset: number; seq: number } | undefined;
  private closed = false;
  private readonly reader = new SegmentReader();

  private constructor(
    private readonly dir: string,
    private readonly options: QueueOptions,
  ) {}

  static async open(dir: string, options: QueueOptions): Promise<DurableQueue> {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const queue = new DurableQueue(dir, options);
    queue.recover();
    await queue.startSegment();
    return queue;
  }

  private recover(): void {
    const names = readdirSync(this.dir)
      .filter((n) => SEGMENT_NAME.test(n))
      .sort();
    const doneSeqs: number[] = [];
    for (const name of names) {
      const file = path.join(this.dir, name);
      const segment: Segment = { firstSeq: parseInt(SEGMENT_NAME.exec(name)![1]!, 16), file, size: 0, changes: 0, done: 0, lastSeq: -1 };
      const lastSegment = names[names.length - 1] === name;
      let tornTail = false;
      const onCorrupt = (range: CorruptRange) => {
        tornTail ||= range.tail && lastSegment;
        this.reportCorrupt(name, range, lastSegment);
      };
      withSegmentFile(file, (readAt) => {
        for (const record of this.reader.records(file, readAt, 0, statSync(file).size, onCorrupt)) {
          if (record.kind === "change") {
            segment.changes++;
            segment.lastSeq = Math.max(segment.lastSeq, record.seq);
          } else {
            doneSeqs.push(record.seq);
          }
          this.nextSeq = Math.max(this.nextSeq, record.seq + 1);
          segment.size = record.end;
        }
      });
      // Appends may go on in this segment (when the torn record was its first, the next seq names
      // it again): cut the unacknowledged bytes off, or new records would sit behind them unread.
      if (tornTail) cutBack(file, segment.size);
      this.nextSeq = Math.max(this.nextSeq, segment.firstSeq);
      this.segments.push(segment);
    }
    for (const seq of doneSeqs) this.applyDone(seq);
    this.liveCount = this.segments.reduce((n, s) => n + s.changes - s.done, 0);
    this.lowWater = this.segments.find((s) => s.changes > s.done)?.firstSeq ?? this.nextSeq;
    for (const seq of [...this.doneAbove]) if (seq < this.lowWater) this.doneAbove.delete(seq);
    this.advanceLowWater();
    this.writtenSeqEnd = this.nextSeq;
  }

  private reportCorrupt(segment: string, range: CorruptRange, lastSegment: boolean): void {
    const torn = range.tail && lastSegment;
    const fields = { segment, offset: range.offset, bytes: range.bytes };
    if (torn)
      this.options.logger.warn(
        fields,
        "queue: torn write at the end of the last segment (agent stopped mid-append); skipped, the frame was never acknowledged",
      );
    else this.options.logger.error(fields, "queue: corrupt bytes inside a segment skipped; changes stored there are lost (disk or file damage)");
  }

  private segmentOf(seq: number): Segment | undefined {
    let lo = 0;
    let hi = this.segments.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = this.segments[mid]!;
      if (seq < s.firstSeq) hi = mid - 1;
      else if (mid + 1 < this.segments.length && seq >= this.segments[mid + 1]!.firstSeq) lo = mid + 1;
      else return s;
    }
    return undefined;
  }

  private applyDone(seq: number): boolean {
    const segment = this.segmentOf(seq);
    if (!segment || seq > segment.lastSeq || seq < this.lowWater || this.doneAbove.has(seq)) return false;
    segment.done++;
    this.doneAbove.add(seq);
    return true;
  }

  private advanceLowWater(): void {
    while (this.doneAbove.has(this.lowWater)) this.doneAbove.delete(this.lowWater++);
    // Seqs can have gaps (a torn record, a deleted segment); skip to the next segment holding live entries.
    const s = this.segmentOf(this.lowWater);
    if (s && s.changes === s.done && this.lowWater <= s.lastSeq) {
      const next = this.segments.find((x) => x.firstSeq > s.firstSeq && x.changes > x.done);
      for (const seq of [...this.doneAbove]) if (seq < (next?.firstSeq ?? this.nextSeq)) this.doneAbove.delete(seq);
      this.lowWater = next?.firstSeq ?? this.nextSeq;
      this.advanceLowWater();
    }
  }

  private async startSegment(): Promise<void> {
    // Appends already numbered but not yet written land in this new segment, so it is named
    // after the first seq not yet on disk rather than after nextSeq.
    const firstSeq = this.writtenSeqEnd;
    const name = `${firstSeq.toString(16).padStart(16, "0")}.seg`;
    const file = path.join(this.dir, name);
    if (this.handle) await this.handle.close();
    this.handle = await open(file, "a", 0o600);
    await this.handle.datasync();
    const existing = this.segments.find((s) => s.file === file);
    this.active = existing ?? { firstSeq, file, size: statSync(file).size, changes: 0, done: 0, lastSeq: -1 };
    if (!existing) this.segments.push(this.active);
    await this.fsyncDir();
  }

  private async fsyncDir(): Promise<void> {
    if (process.platform === "win32") return; // directories cannot be opened for fsync there; NTFS journals the rename.
    const d = await open(this.dir, "r");
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }

  /** Appends a sealed change; resolves once it is on disk (fsync). */
  async append(change: Uint8Array, enqueuedAt = new Date()): Promise<number> {
    if (this.closed) throw new Error("queue is closed");
    const seq = this.nextSeq++;
    await this.write(encodeChangeRecord(seq, enqueuedAt.getTime(), change));
    this.liveCount++;
    this.headCache = undefined;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
    return seq;
  }

  /** Marks an entry delivered (or quarantined); it is never handed out again. */
  async markDone(seq: number, reason: DoneReasonName): Promise<void> {
    if (!this.applyDone(seq)) return;
    this.liveCount--;
    this.headCache = undefined;
    this.advanceLowWater();
    await this.write(encodeDoneRecord(seq, reason));
    await this.compact();
  }

  private write(bytes: Buffer): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ bytes, resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  /** Group commit: everything that arrived while the previous fsync ran goes in one write + fsync. */
  private async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      try {
        const bytes = Buffer.concat(batch.map((p) => p.bytes));
        await this.handle.write(bytes, 0, bytes.length, null);
        await this.handle.datasync();
        this.active.size += bytes.length;
        for (const p of batch) {
          if (p.bytes.readUInt8(8) === 1) {
            this.active.changes++;
            this.active.lastSeq = Math.max(this.active.lastSeq, Number(p.bytes.readBigUInt64LE(9)));
            this.writtenSeqEnd = Math.max(this.writtenSeqEnd, this.active.lastSeq + 1);
          }
        }
        for (const p of batch) p.resolve();
        if (this.active.size >= this.options.segmentBytes) await this.startSegment();
      } catch (err) {
        for (const p of batch) p.reject(err as Error);
      }
    }
    this.flushing = undefined;
  }

  /** Deletes leading segments whose entries are all done (never the active one). */
  private async compact(): Promise<void> {
    let removed = false;
    while (this.segments.length > 1 && this.segments[0] !== this.active && this.segments[0]!.changes === this.segments[0]!.done) {
      const [segment] = this.segments.splice(0, 1);
      if (this.cursor?.segment === segment) this.cursor = undefined;
      this.reader.forget(segment!.file);
      rmSync(segment!.file, { force: true });
      removed = true;
    }
    if (removed) await this.fsyncDir();
  }

  get depth(): number {
    return this.liveCount;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /** The oldest live entry (for queue-age alarms and heartbeats). */
  head(): { seq: number; enqueuedAt: Date } | undefined {
    if (this.liveCount === 0) return undefined;
    if (!this.headCache) {
      const [first] = this.scan(this.lowWater, 1, false);
      this.headCache = first ? { seq: first.seq, enqueuedAt: first.enqueuedAt } : undefined;
    }
    return this.headCache;
  }

  /** Up to `max` live entries with seq > `afterSeq`, in queue order. Reads from disk. */
  read(afterSeq: number, max: number): QueueEntry[] {
    return this.scan(Math.max(afterSeq + 1, this.lowWater), max, true);
  }

  private scan(from: number, max: number, moveCursor: boolean): QueueEntry[] {
    const out: QueueEntry[] = [];
    const resume = this.cursor && this.cursor.seq < from && this.segments.includes(this.cursor.segment) ? this.cursor : undefined;
    let index = resume
      ? this.segments.indexOf(resume.segment)
      : this.segments.findIndex((s, i) => i + 1 === this.segments.length || this.segments[i + 1]!.firstSeq > from);
    for (; index >= 0 && index < this.segments.length && out.length < max; index++) {
      const segment = this.segments[index]!;
      const startOffset = resume?.segment === segment ? resume.offset : 0;
      if (segment.lastSeq < from || segment.changes === segment.done) continue;
      withSegmentFile(segment.file, (readAt) => {
        // Damage was reported when the queue was opened; here it is only skipped.
        for (const record of this.reader.records(segment.file, readAt, startOffset, segment.size, () => {})) {
          if (record.kind !== "change" || record.seq < from || this.doneAbove.has(record.seq)) continue;
          out.push({ seq: record.seq, enqueuedAt: new Date(record.enqueuedAtMs), change: Buffer.from(record.change) });
          if (moveCursor) this.cursor = { segment, offset: record.end, seq: record.seq };
          if (out.length >= max) break;
        }
      });
    }
    return out;
  }

  /** Resolves when an append happens (or at once if entries after `afterSeq` exist). */
  waitForEntries(afterSeq: number, signal?: AbortSignal): Promise<void> {
    if (this.nextSeq - 1 > afterSeq && this.liveCount > 0 && this.read(afterSeq, 1).length > 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        signal?.removeEventListener("abort", done);
        resolve();
      };
      this.waiters.push(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.flushing;
    await this.handle.close();
    for (const w of this.waiters) w();
    this.waiters = [];
  }
}

/** Truncates a segment to its last whole record, durably. */
function cutBack(file: string, size: number): void {
  const fd = openSync(file, "r+");
  try {
    ftruncateSync(fd, size);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
