import { fail, type Result } from "./errors.js";
import { MAX_SPOOL_BLOB_BYTES, SPOOL_HEADER_BYTES, SPOOL_MAGIC } from "./format.js";

/**
 * Envelope versions: 1 = DPAPI machine scope (filters before issue 11: any local account could
 * decrypt it, so the agent still drains such files but says so); 2 = DPAPI in SYSTEM's user
 * scope (only SYSTEM — LSASS and the agent — can decrypt it).
 */
export type SpoolScope = "machine" | "system";
export const SPOOL_VERSION_SCOPE: Readonly<Record<number, SpoolScope>> = { 1: "machine", 2: "system" };
export const SPOOL_VERSION_CURRENT = 2;

/**
 * A spool file is this envelope around a DPAPI blob of one frame. Opening the blob needs
 * CryptUnprotectData on the same machine, in the scope the version names; this only frames it.
 */
export function decodeSpoolEnvelope(buf: Buffer): Result<{ blob: Buffer; version: number; scope: SpoolScope }> {
  if (buf.length < SPOOL_HEADER_BYTES) return fail("Truncated", `spool header needs ${SPOOL_HEADER_BYTES} bytes, have ${buf.length}`);
  const magic = buf.readUInt32LE(0);
  if (magic !== SPOOL_MAGIC) return fail("BadMagic", `magic 0x${magic.toString(16)} is not PWSS`);
  const version = buf.readUInt16LE(4);
  const scope = SPOOL_VERSION_SCOPE[version];
  if (!scope) return fail("UnsupportedVersion", `spool version ${version}`);
  const reserved = buf.readUInt16LE(6);
  if (reserved !== 0) return fail("ReservedNotZero", `spool reserved ${reserved}`);
  const blobBytes = buf.readUInt32LE(8);
  if (blobBytes > MAX_SPOOL_BLOB_BYTES) return fail("BlobTooLarge", `blob_bytes ${blobBytes} > ${MAX_SPOOL_BLOB_BYTES}`);
  const end = SPOOL_HEADER_BYTES + blobBytes;
  if (buf.length < end) return fail("Truncated", `blob_bytes ${blobBytes}, have ${buf.length - SPOOL_HEADER_BYTES}`);
  if (buf.length > end) return fail("TrailingBytes", `${buf.length - end} bytes after the blob`);
  return { ok: true, value: { blob: Buffer.from(buf.subarray(SPOOL_HEADER_BYTES, end)), version, scope } };
}

export function encodeSpoolEnvelope(blob: Buffer, version = SPOOL_VERSION_CURRENT): Buffer {
  const out = Buffer.alloc(SPOOL_HEADER_BYTES + blob.length);
  out.writeUInt32LE(SPOOL_MAGIC, 0);
  out.writeUInt16LE(version, 4);
  out.writeUInt16LE(0, 6);
  out.writeUInt32LE(blob.length, 8);
  blob.copy(out, SPOOL_HEADER_BYTES);
  return out;
}

/**
 * Spool files the agent should drain, oldest first: `<sequence:16 hex>-<capturedAt:16 hex>.pwsf`.
 * Names ending in `.tmp` are unfinished writes (the filter renames atomically when done).
 */
export function spoolDrainOrder(names: readonly string[]): string[] {
  return names.filter((n) => /^[0-9a-f]{16}-[0-9a-f]{16}(-\d+)?\.pwsf$/.test(n)).sort();
}
