import { describe, expect, it } from "vitest";
import { type CorruptRange, encodeChangeRecord, encodeDoneRecord, MAX_PAYLOAD_BYTES } from "./record.js";
import { type ReadAt, SegmentReader } from "./segmentReader.js";

/** A segment held in memory that counts the bytes read from it. */
function memorySegment(initial: Buffer) {
  let bytes = initial;
  const stats = { reads: 0, bytesRead: 0 };
  const readAt: ReadAt = (into, position, length) => {
    const n = Math.max(0, Math.min(length, bytes.length - position));
    bytes.copy(into, 0, position, position + n);
    stats.reads++;
    stats.bytesRead += n;
    return n;
  };
  return {
    readAt,
    stats,
    get size() {
      return bytes.length;
    },
    append(more: Buffer) {
      bytes = Buffer.concat([bytes, more]);
    },
    set(next: Buffer) {
      bytes = next;
    },
  };
}

/** Records of a size that makes window edges fall inside records, not between them. */
const big = (seq: number) => encodeChangeRecord(seq, 1_700_000_000_000 + seq, Buffer.alloc(Math.floor(MAX_PAYLOAD_BYTES / 3) + seq, seq & 0xff));

function readAll(reader: SegmentReader, segment: ReturnType<typeof memorySegment>, from = 0) {
  const corrupt: CorruptRange[] = [];
  const records = [...reader.records("seg", segment.readAt, from, segment.size, (range) => corrupt.push(range))];
  return { records, corrupt };
}

describe("segment reader", () => {
  it("reads every record of a segment many windows long, each whole and in order", () => {
    const records = Array.from({ length: 40 }, (_, i) => big(i));
    const segment = memorySegment(Buffer.concat(records));
    const { records: read, corrupt } = readAll(new SegmentReader(), segment);
    expect(corrupt).toEqual([]);
    expect(read.map((r) => r.seq)).toEqual(records.map((_, i) => i));
    expect(read.map((r) => r.end - r.offset)).toEqual(records.map((r) => r.length));
    const last = read.at(-1)!;
    expect(last.kind === "change" && last.change.length).toBe(Math.floor(MAX_PAYLOAD_BYTES / 3) + 39);
    // Each byte is read about once or twice (windows overlap by at most one record), never per record.
    expect(segment.stats.bytesRead).toBeLessThan(2 * segment.size);
  });

  it("continues from an offset inside its window without reading the segment again", () => {
    const small = Array.from({ length: 100 }, (_, i) => encodeChangeRecord(i, 0, Buffer.from(`sealed-${i}`)));
    const segment = memorySegment(Buffer.concat(small));
    const reader = new SegmentReader();
    const first = [];
    for (const record of reader.records("seg", segment.readAt, 0, segment.size, () => {})) {
      first.push(record);
      if (first.length === 10) break;
    }
    const reads = segment.stats.reads;
    const rest = [...reader.records("seg", segment.readAt, first.at(-1)!.end, segment.size, () => {})];
    expect(rest.map((r) => r.seq)).toEqual(Array.from({ length: 90 }, (_, i) => i + 10));
    expect(segment.stats.reads).toBe(reads);
  });

  it("sees records appended after its window was filled", () => {
    const segment = memorySegment(Buffer.concat([encodeChangeRecord(0, 0, Buffer.from("a")), encodeDoneRecord(0, "committed")]));
    const reader = new SegmentReader();
    expect(readAll(reader, segment).records.map((r) => r.kind)).toEqual(["change", "done"]);
    segment.append(encodeChangeRecord(1, 0, Buffer.from("b")));
    expect(readAll(reader, segment).records.map((r) => `${r.kind}${r.seq}`)).toEqual(["change0", "done0", "change1"]);
  });

  it("reports damage that crosses a window edge once, with its exact extent, and reads on after it", () => {
    const records = Array.from({ length: 12 }, (_, i) => big(i));
    const joined = Buffer.concat(records);
    const start = records.slice(0, 5).reduce((n, r) => n + r.length, 0);
    const damaged = start + records[5]!.length + records[6]!.length; // records 5 and 6 overwritten
    joined.fill(0xee, start, damaged);
    const { records: read, corrupt } = readAll(new SegmentReader(), memorySegment(joined));
    expect(read.map((r) => r.seq)).toEqual([0, 1, 2, 3, 4, 7, 8, 9, 10, 11]);
    expect(corrupt).toEqual([{ offset: start, bytes: damaged - start, tail: false }]);
  });

  it("reports a torn last record as damage at the tail", () => {
    const whole = Buffer.concat([big(0), big(1)]);
    const torn = big(2).subarray(0, 100);
    const { records: read, corrupt } = readAll(new SegmentReader(), memorySegment(Buffer.concat([whole, torn])));
    expect(read.map((r) => r.seq)).toEqual([0, 1]);
    expect(corrupt).toEqual([{ offset: whole.length, bytes: 100, tail: true }]);
  });

  it("reads a forgotten segment afresh rather than from its old window", () => {
    const segment = memorySegment(encodeChangeRecord(0, 0, Buffer.from("old")));
    const reader = new SegmentReader();
    readAll(reader, segment);
    segment.set(encodeChangeRecord(0, 0, Buffer.from("new")));
    reader.forget("seg");
    const [record] = readAll(reader, segment).records;
    expect(record?.kind === "change" && record.change.toString()).toBe("new");
  });
});
