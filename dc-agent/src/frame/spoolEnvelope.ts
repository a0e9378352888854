import { fail, type Result } from "./errors.js";
import { FRAME_VERSION, MAX_SPOOL_BLOB_BYTES, SPOOL_HEADER_BYTES, SPOOL_MAGIC } from "./format.js";

/**
 * A spool file is this envelope around a DPAPI (machine scope) blob of one frame. Opening
 * the blob needs CryptUnprotectData on the same machine; this only frames it.
 */
export function decodeSpoolEnvelope(buf: Buffer): Result<{ blob: Buffer }> {
  if (buf.length < SPOOL_HEADER_BYTES) return fail("Truncated", `spool header needs ${SPOOL_HEADER_BYTES} bytes, have ${buf.length}`);
  const magic = buf.readUInt32LE(0);
  if (magic !== SPOOL_MAGIC) return fail("BadMagic", `magic 0x${magic.toString(16)} is not PWSS`);
  const version = buf.readUInt16LE(4);
  if (version !== FRAME_VERSION) return fail("UnsupportedVersion", `spool version ${version}`);
  const reserved = buf.readUInt16LE(6);
  if (reserved !== 0) return fail("ReservedNotZero", `spool reserved ${reserved}`);
  const blobBytes = buf.readUInt32LE(8);
  if (blobBytes > MAX_SPOOL_BLOB_BYTES) return fail("BlobTooLarge", `blob_bytes ${blobBytes} > ${MAX_SPOOL_BLOB_BYTES}`);
  const end = SPOOL_HEADER_BYTES + blobBytes;
  if (buf.length < end) return fail("Truncated", `blob_bytes ${blobBytes}, have ${buf.length - SPOOL_HEADER_BYTES}`);
  if (buf.length > end) return fail("TrailingBytes", `${buf.length - end} bytes after the blob`);
  return { ok: true, value: { blob: Buffer.from(buf.subarray(SPOOL_HEADER_BYTES, end)) } };
}

export function encodeSpoolEnvelope(blob: Buffer): Buffer {
  const out = Buffer.alloc(SPOOL_HEADER_BYTES + blob.length);
  out.writeUInt32LE(SPOOL_MAGIC, 0);
  out.writeUInt16LE(FRAME_VERSION, 4);
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
