// Constants of the filter ⇄ agent wire format, version 1. The normative text is
// docs/frame-format.md; the C filter has the same numbers in lsa-filter/src/frame.h.

export const FRAME_MAGIC = 0x46535750; // "PWSF" read as a little-endian u32
export const ACK_MAGIC = 0x41535750; // "PWSA"
export const SPOOL_MAGIC = 0x53535750; // "PWSS"
export const FRAME_VERSION = 1;
export const HEADER_BYTES = 40;
export const ACK_BYTES = 16;
export const SPOOL_HEADER_BYTES = 12;

/** sAMAccountName's schema rangeUpper and the SAM maximum password length, in UTF-16 units. */
export const MAX_ACCOUNT_CHARS = 256;
export const MAX_PASSWORD_CHARS = 256;
export const MAX_ACCOUNT_BYTES = MAX_ACCOUNT_CHARS * 2;
export const MAX_PASSWORD_BYTES = MAX_PASSWORD_CHARS * 2;
export const MAX_FRAME_BYTES = HEADER_BYTES + MAX_ACCOUNT_BYTES + MAX_PASSWORD_BYTES;
/** A DPAPI blob of a 1064-byte frame is well under this; anything larger is not ours. */
export const MAX_SPOOL_BLOB_BYTES = 64 * 1024;

export const Offset = {
  magic: 0,
  version: 4,
  headerBytes: 6,
  frameBytes: 8,
  flags: 12,
  sequence: 16,
  capturedAt: 24,
  accountBytes: 32,
  passwordBytes: 34,
  reserved: 36,
} as const;

/** 100-ns intervals between 1601-01-01 (FILETIME epoch) and 1970-01-01. */
export const FILETIME_UNIX_EPOCH = 116444736000000000n;
