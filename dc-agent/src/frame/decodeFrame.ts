import { fail, type Result } from "./errors.js";
import { FILETIME_UNIX_EPOCH, FRAME_MAGIC, FRAME_VERSION, HEADER_BYTES, MAX_ACCOUNT_BYTES, MAX_FRAME_BYTES, MAX_PASSWORD_BYTES, Offset } from "./format.js";
import { checkWellFormedUtf16le, containsNulUnit } from "./utf16.js";

export interface FrameHeader {
  readonly frameBytes: number;
  readonly sequence: bigint;
  readonly capturedAtFiletime: bigint;
  readonly accountBytes: number;
  readonly passwordBytes: number;
}

export interface DecodedFrame {
  readonly accountName: string;
  /** The account exactly as LSA gave it (UTF-16LE), for byte-exact logging of lengths or replays. */
  readonly accountNameUtf16le: Buffer;
  /**
   * UTF-16LE password in a Buffer of its own (not a pool slice): the caller wipes it with
   * `wipe()` as soon as it has sealed it. It is never turned into a string here.
   */
  readonly password: Buffer;
  readonly sequence: bigint;
  readonly capturedAtFiletime: bigint;
  readonly capturedAt: Date;
}

/**
 * Validates the fixed 40-byte header (checks 1–11 of the spec). A stream reader calls this
 * with the first HEADER_BYTES of a frame to learn how many more bytes to read, before it
 * allocates anything from an untrusted length.
 */
export function decodeHeader(buf: Buffer): Result<FrameHeader> {
  if (buf.length < 8) return fail("Truncated", `need at least 8 bytes for magic and version, have ${buf.length}`);
  const magic = buf.readUInt32LE(Offset.magic);
  if (magic !== FRAME_MAGIC) return fail("BadMagic", `magic 0x${magic.toString(16)} is not PWSF`);
  const version = buf.readUInt16LE(Offset.version);
  if (version !== FRAME_VERSION) return fail("UnsupportedVersion", `version ${version}, this agent reads ${FRAME_VERSION}`);
  const headerBytes = buf.readUInt16LE(Offset.headerBytes);
  if (headerBytes !== HEADER_BYTES) return fail("BadHeaderSize", `header_bytes ${headerBytes}, v1 requires ${HEADER_BYTES}`);
  if (buf.length < HEADER_BYTES) return fail("Truncated", `header needs ${HEADER_BYTES} bytes, have ${buf.length}`);
  const frameBytes = buf.readUInt32LE(Offset.frameBytes);
  if (frameBytes > MAX_FRAME_BYTES) return fail("FrameTooLarge", `frame_bytes ${frameBytes} exceeds ${MAX_FRAME_BYTES}`);
  const flags = buf.readUInt32LE(Offset.flags);
  if (flags !== 0) return fail("UnsupportedFlags", `flags 0x${flags.toString(16)}, v1 defines none`);
  const reserved = buf.readUInt32LE(Offset.reserved);
  if (reserved !== 0) return fail("ReservedNotZero", `reserved ${reserved}, must be 0`);
  const accountBytes = buf.readUInt16LE(Offset.accountBytes);
  const passwordBytes = buf.readUInt16LE(Offset.passwordBytes);
  if (accountBytes > MAX_ACCOUNT_BYTES) return fail("TooLong", `account_bytes ${accountBytes} > ${MAX_ACCOUNT_BYTES}`, "account");
  if (passwordBytes > MAX_PASSWORD_BYTES) return fail("TooLong", `password_bytes ${passwordBytes} > ${MAX_PASSWORD_BYTES}`, "password");
  if (accountBytes % 2 !== 0) return fail("OddLength", `account_bytes ${accountBytes} is odd`, "account");
  if (passwordBytes % 2 !== 0) return fail("OddLength", `password_bytes ${passwordBytes} is odd`, "password");
  const expected = HEADER_BYTES + accountBytes + passwordBytes;
  if (frameBytes !== expected) {
    return fail("LengthMismatch", `frame_bytes ${frameBytes} != ${HEADER_BYTES} + ${accountBytes} + ${passwordBytes}`);
  }
  return {
    ok: true,
    value: {
      frameBytes,
      sequence: buf.readBigUInt64LE(Offset.sequence),
      capturedAtFiletime: buf.readBigUInt64LE(Offset.capturedAt),
      accountBytes,
      passwordBytes,
    },
  };
}

export function filetimeToDate(filetime: bigint): Date {
  return new Date(Number((filetime - FILETIME_UNIX_EPOCH) / 10000n));
}

/** Decodes exactly one complete frame. Never throws; never returns a password as a string. */
export function decodeFrame(buf: Buffer): Result<DecodedFrame> {
  const header = decodeHeader(buf);
  if (!header.ok) return header;
  const h = header.value;
  if (buf.length < h.frameBytes) return fail("Truncated", `frame_bytes ${h.frameBytes}, have ${buf.length}`);
  if (buf.length > h.frameBytes) return fail("TrailingBytes", `${buf.length - h.frameBytes} bytes after frame_bytes ${h.frameBytes}`);
  if (h.accountBytes === 0) return fail("EmptyAccount", "account_bytes is 0");

  const accountEnd = HEADER_BYTES + h.accountBytes;
  const account = buf.subarray(HEADER_BYTES, accountEnd);
  const accountCheck = checkWellFormedUtf16le(account);
  if (!accountCheck.ok) return fail("InvalidUtf16", `unpaired surrogate at unit ${accountCheck.badUnitIndex}`, "account");
  if (containsNulUnit(account)) return fail("InvalidAccountName", "account contains U+0000", "account");
  const passwordView = buf.subarray(accountEnd, h.frameBytes);
  const passwordCheck = checkWellFormedUtf16le(passwordView);
  if (!passwordCheck.ok) return fail("InvalidUtf16", `unpaired surrogate at unit ${passwordCheck.badUnitIndex}`, "password");

  const password = Buffer.alloc(h.passwordBytes);
  passwordView.copy(password);
  return {
    ok: true,
    value: {
      accountName: account.toString("utf16le"),
      accountNameUtf16le: Buffer.from(account),
      password,
      sequence: h.sequence,
      capturedAtFiletime: h.capturedAtFiletime,
      capturedAt: filetimeToDate(h.capturedAtFiletime),
    },
  };
}
