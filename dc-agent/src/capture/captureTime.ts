import { create } from "@bufbuild/protobuf";
import { TimestampSchema, type Timestamp } from "@bufbuild/protobuf/wkt";
import { FILETIME_UNIX_EPOCH } from "../frame/index.js";

/**
 * The filter's capture FILETIME (100 ns since 1601, UTC) as a protobuf Timestamp, keeping all
 * of its resolution: two changes of one user on two DCs a fraction of a millisecond apart must
 * still order (a JS Date would round both to the same millisecond).
 */
export function filetimeToTimestamp(filetime: bigint): Timestamp {
  const sinceUnix = filetime > FILETIME_UNIX_EPOCH ? filetime - FILETIME_UNIX_EPOCH : 0n;
  return create(TimestampSchema, { seconds: sinceUnix / 10_000_000n, nanos: Number(sinceUnix % 10_000_000n) * 100 });
}

/** pwdLastSet older than the capture by more than this means a clock problem, not a later change. */
export const PWDLASTSET_TOLERANCE_MS = 2_000;

export type PasswordLastSetCheck =
  | { kind: "consistent" }
  /** Normal for a change that waited (spool, queue): the account changed again since. Ordering uses the capture time. */
  | { kind: "newerChangeSince"; byMs: number }
  /** AD says the password was set well before the filter saw the change: the DC's clock jumped, or the frame's time is wrong. */
  | { kind: "captureAfterPasswordLastSet"; byMs: number }
  | { kind: "unknown" };

/**
 * pwdLastSet is only a cross-check of the capture time now: it is read when the agent gets to
 * the change, so a change that waited shares it with any newer one (the tie that once let an
 * older password through). It never decides the order.
 */
export function crossCheckPasswordLastSet(capturedAt: Date, passwordLastSet: Date | undefined): PasswordLastSetCheck {
  if (!passwordLastSet) return { kind: "unknown" };
  const delta = passwordLastSet.getTime() - capturedAt.getTime();
  if (delta > PWDLASTSET_TOLERANCE_MS) return { kind: "newerChangeSince", byMs: delta };
  if (delta < -PWDLASTSET_TOLERANCE_MS) return { kind: "captureAfterPasswordLastSet", byMs: -delta };
  return { kind: "consistent" };
}
