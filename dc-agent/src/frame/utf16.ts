// UTF-16LE helpers that work on Buffers, so a password never has to become a JS string
// (strings are immutable and cannot be wiped).

export type Utf16Check = { ok: true } | { ok: false; badUnitIndex: number };

/** True when every surrogate is paired; UTF-16 from LSA is not guaranteed to be. */
export function checkWellFormedUtf16le(bytes: Buffer): Utf16Check {
  const units = bytes.length >>> 1;
  for (let i = 0; i < units; i++) {
    const u = bytes.readUInt16LE(i * 2);
    if (u >= 0xd800 && u <= 0xdbff) {
      const next = i + 1 < units ? bytes.readUInt16LE((i + 1) * 2) : -1;
      if (next < 0xdc00 || next > 0xdfff) return { ok: false, badUnitIndex: i };
      i++;
    } else if (u >= 0xdc00 && u <= 0xdfff) {
      return { ok: false, badUnitIndex: i };
    }
  }
  return { ok: true };
}

export function containsNulUnit(bytes: Buffer): boolean {
  for (let i = 0; i + 1 < bytes.length; i += 2) {
    if (bytes[i] === 0 && bytes[i + 1] === 0) return true;
  }
  return false;
}

/**
 * Transcodes well-formed UTF-16LE to a fresh UTF-8 Buffer without an intermediate string.
 * The caller owns (and should wipe) both buffers. Returns null on a lone surrogate.
 */
export function utf16leToUtf8(bytes: Buffer): Buffer | null {
  if (!checkWellFormedUtf16le(bytes).ok) return null;
  const units = bytes.length >>> 1;
  let size = 0;
  for (let i = 0; i < units; i++) {
    const u = bytes.readUInt16LE(i * 2);
    if (u < 0x80) size += 1;
    else if (u < 0x800) size += 2;
    else if (u >= 0xd800 && u <= 0xdbff) {
      size += 4;
      i++;
    } else size += 3;
  }
  const out = Buffer.alloc(size);
  let o = 0;
  for (let i = 0; i < units; i++) {
    let cp = bytes.readUInt16LE(i * 2);
    if (cp >= 0xd800 && cp <= 0xdbff) {
      const lo = bytes.readUInt16LE((i + 1) * 2);
      cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
      i++;
    }
    if (cp < 0x80) out[o++] = cp;
    else if (cp < 0x800) {
      out[o++] = 0xc0 | (cp >> 6);
      out[o++] = 0x80 | (cp & 0x3f);
    } else if (cp < 0x10000) {
      out[o++] = 0xe0 | (cp >> 12);
      out[o++] = 0x80 | ((cp >> 6) & 0x3f);
      out[o++] = 0x80 | (cp & 0x3f);
    } else {
      out[o++] = 0xf0 | (cp >> 18);
      out[o++] = 0x80 | ((cp >> 12) & 0x3f);
      out[o++] = 0x80 | ((cp >> 6) & 0x3f);
      out[o++] = 0x80 | (cp & 0x3f);
    }
  }
  return out;
}

/** Overwrites a buffer that held a secret. */
export function wipe(buf: Buffer | Uint8Array): void {
  buf.fill(0);
}
