import { crc32 } from "node:zlib";

// On-disk record: u32 LE payload length | u32 LE CRC-32 of payload | payload.
// Payload: u8 kind | u64 LE seq | kind-specific body. Only sealed changes are ever stored.

export const RECORD_HEADER_BYTES = 8;
/** A sealed change is well under 4 KiB; anything claiming more is corruption, not data. */
export const MAX_PAYLOAD_BYTES = 256 * 1024;

export const RecordKind = { change: 1, done: 2 } as const;

/** Why an entry left the queue. */
// committed/duplicate/quarantined: the outbox (ingest's answer). scoped/outOfScope: the intake
// (the scope check moved the change to the outbox, or dropped it).
export const DoneReason = { committed: 1, duplicate: 2, quarantined: 3, scoped: 4, outOfScope: 5 } as const;
export type DoneReasonName = keyof typeof DoneReason;

export type QueueRecord = { kind: "change"; seq: number; enqueuedAtMs: number; change: Buffer } | { kind: "done"; seq: number; reason: number };

function frame(payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length);
  out.writeUInt32LE(payload.length, 0);
  out.writeUInt32LE(crc32(payload), 4);
  payload.copy(out, RECORD_HEADER_BYTES);
  return out;
}

export function encodeChangeRecord(seq: number, enqueuedAtMs: number, change: Uint8Array): Buffer {
  const payload = Buffer.allocUnsafe(1 + 8 + 8 + change.length);
  payload.writeUInt8(RecordKind.change, 0);
  payload.writeBigUInt64LE(BigInt(seq), 1);
  payload.writeBigUInt64LE(BigInt(enqueuedAtMs), 9);
  Buffer.from(change.buffer, change.byteOffset, change.byteLength).copy(payload, 17);
  return frame(payload);
}

export function encodeDoneRecord(seq: number, reason: DoneReasonName): Buffer {
  const payload = Buffer.allocUnsafe(1 + 8 + 1);
  payload.writeUInt8(RecordKind.done, 0);
  payload.writeBigUInt64LE(BigInt(seq), 1);
  payload.writeUInt8(DoneReason[reason], 9);
  return frame(payload);
}

export interface CorruptRange {
  offset: number;
  bytes: number;
  /** True when the damage runs to the end of the data (a torn last write). */
  tail: boolean;
}

function parsePayload(payload: Buffer): QueueRecord | undefined {
  if (payload.length < 9) return undefined;
  const kind = payload.readUInt8(0);
  const seq = Number(payload.readBigUInt64LE(1));
  if (kind === RecordKind.change && payload.length >= 17) {
    return { kind: "change", seq, enqueuedAtMs: Number(payload.readBigUInt64LE(9)), change: payload.subarray(17) };
  }
  if (kind === RecordKind.done && payload.length === 10) return { kind: "done", seq, reason: payload.readUInt8(9) };
  return undefined;
}

/** The intact record starting at `offset` of `buf`, or undefined (too short, bad shape or checksum). */
export function recordAt(buf: Buffer, offset: number): { record: QueueRecord; end: number } | undefined {
  if (buf.length - offset < RECORD_HEADER_BYTES) return undefined;
  const length = buf.readUInt32LE(offset);
  if (length > MAX_PAYLOAD_BYTES || buf.length - offset - RECORD_HEADER_BYTES < length) return undefined;
  const start = offset + RECORD_HEADER_BYTES;
  // Cheap shape checks before the checksum, so resynchronising over damage stays fast.
  const kind = length > 0 ? buf[start] : 0;
  if (!(kind === RecordKind.done ? length === 10 : kind === RecordKind.change && length >= 17)) return undefined;
  const payload = buf.subarray(start, start + length);
  if (crc32(payload) !== buf.readUInt32LE(offset + 4)) return undefined;
  const record = parsePayload(payload);
  return record ? { record, end: start + length } : undefined;
}
