import { createHash } from "node:crypto";

export interface FrameIdentity {
  sequence: bigint;
  capturedAtFiletime: bigint;
  accountNameUtf16le: Buffer;
}

/**
 * The change id is derived from what identifies one capture on this DC (filter sequence,
 * capture FILETIME, account), not drawn at random: a frame that reaches the agent twice (the
 * agent crashed after queueing but before acking the filter, which then spooled it) gets the
 * same id, and ingest stores it once. UUID version 8 (RFC 9562, "custom") from SHA-256.
 */
export function changeIdFor(domainController: string, frame: FrameIdentity): string {
  const fixed = Buffer.alloc(16);
  fixed.writeBigUInt64LE(BigInt.asUintN(64, frame.sequence), 0);
  fixed.writeBigUInt64LE(BigInt.asUintN(64, frame.capturedAtFiletime), 8);
  const h = createHash("sha256")
    .update("pwsync/change-id/v1\0")
    .update(domainController.toLowerCase())
    .update("\0")
    .update(fixed)
    .update(frame.accountNameUtf16le)
    .digest()
    .subarray(0, 16);
  h[6] = (h[6]! & 0x0f) | 0x80;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const hex = h.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
