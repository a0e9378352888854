import { timestampDate } from "@bufbuild/protobuf/wkt";
import { decodeEvent } from "@pwsync/proto";

/** The event stream of the reset-executor's sealing key epochs. */
export const SEALING_KEYS_STREAM = "sealing-keys";

export type SealingKeyState = "current" | "overlap" | "retired" | "destroyed";

export interface SealingKeyEpoch {
  epoch: number;
  keyId: string;
  publicKeyPem: string;
  createdAt: Date;
  /** Set once a newer key took over: agents' changes sealed to this one are accepted until then. */
  acceptUntil?: Date;
  destroyedAt?: Date;
}

/** Folds the sealing-keys stream into its epochs, oldest first. */
export function epochsFromEvents(events: ReadonlyArray<{ type: string; data: unknown; createdAt: Date }>): SealingKeyEpoch[] {
  const byId = new Map<string, SealingKeyEpoch>();
  for (const event of events) {
    if (event.type === "SealingKeyCreated") {
      const e = decodeEvent("SealingKeyCreated", event.data);
      if (!byId.has(e.keyId))
        byId.set(e.keyId, {
          epoch: e.epoch,
          keyId: e.keyId,
          publicKeyPem: e.publicKeyPem,
          createdAt: e.createdAt ? timestampDate(e.createdAt) : event.createdAt,
        });
    } else if (event.type === "SealingKeyRetired") {
      const e = decodeEvent("SealingKeyRetired", event.data);
      const epoch = byId.get(e.keyId);
      if (epoch && e.acceptUntil) epoch.acceptUntil = timestampDate(e.acceptUntil);
    } else if (event.type === "SealingKeyDestroyed") {
      const epoch = byId.get(decodeEvent("SealingKeyDestroyed", event.data).keyId);
      if (epoch) epoch.destroyedAt = event.createdAt;
    }
  }
  return [...byId.values()].sort((a, b) => a.epoch - b.epoch);
}

export function epochState(epoch: SealingKeyEpoch, now: Date): SealingKeyState {
  if (epoch.destroyedAt) return "destroyed";
  if (!epoch.acceptUntil) return "current";
  return now < epoch.acceptUntil ? "overlap" : "retired";
}

/**
 * Which key ids ingest accepts: the configured ones plus current and overlapping epochs, minus
 * every epoch past its overlap or destroyed — a change sealed to a key about to be destroyed
 * would be unreadable.
 */
export function acceptedKeyIds(configured: Iterable<string>, epochs: readonly SealingKeyEpoch[], now: Date): Set<string> {
  const accepted = new Set(configured);
  for (const epoch of epochs) {
    const state = epochState(epoch, now);
    if (state === "current" || state === "overlap") accepted.add(epoch.keyId);
    else accepted.delete(epoch.keyId);
  }
  return accepted;
}
