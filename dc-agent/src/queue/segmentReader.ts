import { closeSync, openSync, readSync } from "node:fs";
import { type CorruptRange, MAX_PAYLOAD_BYTES, type QueueRecord, RECORD_HEADER_BYTES, recordAt } from "./record.js";

/** The largest intact record; a window always holds this much past the record it parses. */
const MAX_RECORD_BYTES = RECORD_HEADER_BYTES + MAX_PAYLOAD_BYTES;
const WINDOW_BYTES = 2 * MAX_RECORD_BYTES;

/** Copies up to `length` bytes at `position` of a segment into `into`; returns how many it copied. */
export type ReadAt = (into: Buffer, position: number, length: number) => number;

export type PositionedRecord = QueueRecord & { offset: number; end: number };

/**
 * Reads a segment's records in file order through one reusable window of twice the largest
 * record, so neither recovery nor the sender holds a whole segment, or a fresh buffer per read,
 * in memory (a backlog is drained in constant memory). Segment files only ever grow, so bytes
 * already in the window stay valid between calls: the sender's next batch usually needs no
 * read at all. The window is refilled whenever a record starting in it could reach past it, so
 * a record is never judged torn or damaged because of where the window happens to end.
 *
 * A yielded change's bytes are a view into the window: copy them before the next record.
 */
export class SegmentReader {
  private window: Buffer | undefined;
  private source: string | undefined;
  private windowStart = 0;
  private windowEnd = 0;

  /** Records intact in `[from, to)` of `source`; damage is reported and skipped as in readRecords. */
  *records(source: string, readAt: ReadAt, from: number, to: number, onCorrupt: (range: CorruptRange) => void): Generator<PositionedRecord> {
    let position = from;
    let corruptFrom: number | undefined;
    while (position < to) {
      this.cover(source, readAt, position, to);
      const view = this.window!.subarray(0, Math.min(this.windowEnd, to) - this.windowStart);
      const hit = recordAt(view, position - this.windowStart);
      if (!hit) {
        corruptFrom ??= position;
        position++;
        continue;
      }
      if (corruptFrom !== undefined) {
        onCorrupt({ offset: corruptFrom, bytes: position - corruptFrom, tail: false });
        corruptFrom = undefined;
      }
      const end = hit.end + this.windowStart;
      yield { ...hit.record, offset: position, end };
      position = end;
    }
    if (corruptFrom !== undefined) onCorrupt({ offset: corruptFrom, bytes: to - corruptFrom, tail: true });
  }

  /** Drops the window if it holds bytes of `source` (the segment is being deleted). */
  forget(source: string): void {
    if (this.source === source) this.source = undefined;
  }

  /** Makes the window hold [position, position + MAX_RECORD_BYTES), or up to `to` when that is nearer. */
  private cover(source: string, readAt: ReadAt, position: number, to: number): void {
    const need = Math.min(to, position + MAX_RECORD_BYTES);
    if (this.source === source && position >= this.windowStart && need <= this.windowEnd) return;
    this.window ??= Buffer.allocUnsafeSlow(WINDOW_BYTES);
    const length = Math.min(WINDOW_BYTES, to - position);
    let got = 0;
    while (got < length) {
      const n = readAt(this.window.subarray(got), position + got, length - got);
      if (n === 0) break;
      got += n;
    }
    // A file shorter than the queue's own count of fsynced bytes (cut by something else) reads
    // as damage at its end rather than as whatever the window held before.
    if (got < length) this.window.fill(0, got, length);
    this.source = source;
    this.windowStart = position;
    this.windowEnd = position + length;
  }
}

/** A ReadAt over a segment file for the duration of `use`; the file is opened only if a read is needed. */
export function withSegmentFile<T>(file: string, use: (readAt: ReadAt) => T): T {
  let fd: number | undefined;
  try {
    return use((into, position, length) => readSync((fd ??= openSync(file, "r")), into, 0, length, position));
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
