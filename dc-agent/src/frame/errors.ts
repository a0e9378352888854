// Every way a frame, ack or spool envelope can be malformed. Decoders return these as
// values; they never throw, because the agent reads bytes from another process.

export type FrameErrorCode =
  | "Truncated"
  | "TrailingBytes"
  | "BadMagic"
  | "UnsupportedVersion"
  | "BadHeaderSize"
  | "UnsupportedFlags"
  | "ReservedNotZero"
  | "FrameTooLarge"
  | "LengthMismatch"
  | "OddLength"
  | "TooLong"
  | "EmptyAccount"
  | "InvalidUtf16"
  | "InvalidAccountName"
  | "BadAckStatus"
  | "BlobTooLarge";

export type FrameField = "account" | "password";

export interface FrameError {
  readonly code: FrameErrorCode;
  readonly field?: FrameField;
  /** Names the numbers involved; never contains account or password bytes. */
  readonly message: string;
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: FrameError };

export function fail<T>(code: FrameErrorCode, message: string, field?: FrameField): Result<T> {
  return { ok: false, error: field === undefined ? { code, message } : { code, field, message } };
}
