// What to do with one account state delivered by `samba-tool user syncpasswords` (pure).
//
// syncpasswords delivers at least once and only the latest state of an account: a restart
// redelivers, a non-password modification (say, a rename or a disable) redelivers the same
// password, and three quick resets arrive as one delivery of the last. A password write is
// identified by the account's objectGUID and the DC's own pwdLastSet (with the key version
// msDS-KeyVersionNumber as a tie-break: two writes in one 100 ns tick, or pwdLastSet = 0 for
// "must change at next logon", which says nothing about order).

export interface PasswordVersion {
  pwdLastSet: bigint;
  keyVersion?: number | undefined;
}

export interface AccountMemory extends PasswordVersion {
  /** True once a delivery of this version was queued for sync (not merely recorded by the baseline). */
  synced: boolean;
}

export type DeliveryMode =
  /** First run: build the memory of every account's current version without syncing. */
  | { kind: "baseline"; startedAt: bigint }
  /** Normal operation after the baseline. */
  | { kind: "live" }
  /** An admin's explicit bulk sync: the current password of every account is synced once. */
  | { kind: "bulk" };

export interface Delivery extends PasswordVersion {
  isDeleted: boolean;
  hasClearText: boolean;
}

export type Decision =
  | { action: "queue"; remember: AccountMemory }
  | { action: "remember"; remember: AccountMemory; reason: string }
  | { action: "skip"; reason: string };

/** Negative when a is older than b, 0 when the same write, positive when newer. */
export function compareVersions(a: PasswordVersion, b: PasswordVersion): number {
  if (a.keyVersion !== undefined && b.keyVersion !== undefined && a.keyVersion !== b.keyVersion) return a.keyVersion - b.keyVersion;
  if (a.pwdLastSet !== b.pwdLastSet) {
    // pwdLastSet = 0 ("must change at next logon") carries no time: without a key version it
    // cannot be ordered, so it counts as new (a redundant set is harmless, a lost one is not).
    if (a.pwdLastSet === 0n || b.pwdLastSet === 0n) return a.pwdLastSet === 0n ? 1 : -1;
    return a.pwdLastSet < b.pwdLastSet ? -1 : 1;
  }
  return 0;
}

export function decideDelivery(known: AccountMemory | undefined, delivery: Delivery, mode: DeliveryMode): Decision {
  if (delivery.isDeleted) return { action: "skip", reason: "account deleted" };
  const version: PasswordVersion = { pwdLastSet: delivery.pwdLastSet, keyVersion: delivery.keyVersion };
  const order = known ? compareVersions(version, known) : 1;
  if (order < 0) return { action: "skip", reason: "older than a password already handled for this account" };
  if (mode.kind === "baseline") {
    // A change made after the agent began its first run is a real change, not history.
    if (order > 0 && delivery.hasClearText && delivery.pwdLastSet >= mode.startedAt) return { action: "queue", remember: { ...version, synced: true } };
    return { action: "remember", remember: { ...version, synced: known?.synced ?? false }, reason: "first run: current password recorded, not synced" };
  }
  if (order === 0 && (known!.synced || mode.kind === "live")) return { action: "skip", reason: "same password write delivered again" };
  if (!delivery.hasClearText) return { action: "remember", remember: { ...version, synced: false }, reason: "no cleartext (hash-only set): cannot be synced" };
  return { action: "queue", remember: { ...version, synced: true } };
}
