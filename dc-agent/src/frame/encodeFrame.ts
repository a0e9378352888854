import { fail, type Result } from "./errors.js";
import { FRAME_MAGIC, FRAME_VERSION, HEADER_BYTES, MAX_ACCOUNT_BYTES, MAX_PASSWORD_BYTES, Offset } from "./format.js";

export interface FrameInput {
  /** UTF-16LE bytes, as LSA hands them to the filter. */
  readonly accountUtf16le: Buffer;
  readonly passwordUtf16le: Buffer;
  readonly sequence: bigint;
  readonly capturedAtFiletime: bigint;
}

/**
 * Builds a v1 frame (what the C filter does); used by the agent's tests and by tools that
 * replay captures. The returned Buffer holds the password: wipe it after use.
 */
export function encodeFrame(input: FrameInput): Result<Buffer> {
  const a = input.accountUtf16le.length;
  const p = input.passwordUtf16le.length;
  if (a === 0) return fail("EmptyAccount", "account is empty");
  if (a > MAX_ACCOUNT_BYTES) return fail("TooLong", `account ${a} bytes > ${MAX_ACCOUNT_BYTES}`, "account");
  if (p > MAX_PASSWORD_BYTES) return fail("TooLong", `password ${p} bytes > ${MAX_PASSWORD_BYTES}`, "password");
  if (a % 2 !== 0) return fail("OddLength", `account ${a} bytes is odd`, "account");
  if (p % 2 !== 0) return fail("OddLength", `password ${p} bytes is odd`, "password");
  const out = Buffer.alloc(HEADER_BYTES + a + p);
  out.writeUInt32LE(FRAME_MAGIC, Offset.magic);
  out.writeUInt16LE(FRAME_VERSION, Offset.version);
  out.writeUInt16LE(HEADER_BYTES, Offset.headerBytes);
  out.writeUInt32LE(out.length, Offset.frameBytes);
  out.writeUInt32LE(0, Offset.flags);
  out.writeBigUInt64LE(BigInt.asUintN(64, input.sequence), Offset.sequence);
  out.writeBigUInt64LE(BigInt.asUintN(64, input.capturedAtFiletime), Offset.capturedAt);
  out.writeUInt16LE(a, Offset.accountBytes);
  out.writeUInt16LE(p, Offset.passwordBytes);
  out.writeUInt32LE(0, Offset.reserved);
  input.accountUtf16le.copy(out, HEADER_BYTES);
  input.passwordUtf16le.copy(out, HEADER_BYTES + a);
  return { ok: true, value: out };
}
