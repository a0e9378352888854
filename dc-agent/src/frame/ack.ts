import { fail, type Result } from "./errors.js";
import { ACK_BYTES, ACK_MAGIC, FRAME_VERSION } from "./format.js";

/**
 * accepted: durably queued, the filter forgets the frame.
 * rejected: malformed, the filter logs and drops it (re-sending cannot help).
 * retryLater: agent cannot queue now; the filter spools the frame.
 */
export type AckStatus = "accepted" | "rejected" | "retryLater";
const STATUS_CODES: Record<AckStatus, number> = { accepted: 0, rejected: 1, retryLater: 2 };

export interface Ack {
  readonly status: AckStatus;
  readonly sequence: bigint;
}

export function encodeAck(ack: Ack): Buffer {
  const out = Buffer.alloc(ACK_BYTES);
  out.writeUInt32LE(ACK_MAGIC, 0);
  out.writeUInt16LE(FRAME_VERSION, 4);
  out.writeUInt16LE(STATUS_CODES[ack.status], 6);
  out.writeBigUInt64LE(BigInt.asUintN(64, ack.sequence), 8);
  return out;
}

export function decodeAck(buf: Buffer): Result<Ack> {
  if (buf.length < ACK_BYTES) return fail("Truncated", `ack needs ${ACK_BYTES} bytes, have ${buf.length}`);
  if (buf.length > ACK_BYTES) return fail("TrailingBytes", `ack is ${ACK_BYTES} bytes, have ${buf.length}`);
  const magic = buf.readUInt32LE(0);
  if (magic !== ACK_MAGIC) return fail("BadMagic", `magic 0x${magic.toString(16)} is not PWSA`);
  const version = buf.readUInt16LE(4);
  if (version !== FRAME_VERSION) return fail("UnsupportedVersion", `ack version ${version}`);
  const code = buf.readUInt16LE(6);
  const status = (Object.keys(STATUS_CODES) as AckStatus[]).find((s) => STATUS_CODES[s] === code);
  if (status === undefined) return fail("BadAckStatus", `ack status ${code} is not defined`);
  return { ok: true, value: { status, sequence: buf.readBigUInt64LE(8) } };
}
