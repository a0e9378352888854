import { epochState, type SealingKeyEpoch } from "@pwsync/crypto";

export interface KeyPolicy {
  /** A current key older than this is replaced; 0 = never (keys then rotate by hand). */
  rotateAfterMs: number;
  /** How long ingest keeps accepting changes sealed to the key a rotation replaced. */
  overlapMs: number;
  /** Extra wait after the overlap, for ingest replicas to notice and in-flight changes to land. */
  destroyGraceMs: number;
}

export type KeyAction =
  /** Key files on disk that no epoch names yet (first start, or an operator added one): the newest becomes current. */
  | { kind: "adopt"; keyIds: string[] }
  | { kind: "rotate"; current: SealingKeyEpoch }
  /** Overwrite and delete the private key (if still on disk) and record SealingKeyDestroyed. */
  | { kind: "destroy"; epoch: SealingKeyEpoch; fileOnDisk: boolean }
  /** Recorded destroyed but the file survived (a crash between commit and deletion). */
  | { kind: "wipe"; keyId: string };

export interface KeySituation {
  epochs: readonly SealingKeyEpoch[];
  /** Key ids of the private key files on disk, oldest file first. */
  onDisk: readonly string[];
  /** Sealed secrets in sealed_secrets per key id. */
  liveSecrets: ReadonlyMap<string, number>;
  now: Date;
}

/**
 * What the key manager does now (pure). A key is destroyed only when all hold: a newer key
 * replaced it, ingest stopped accepting it (overlap + grace passed), and no sealed secret in
 * the database refers to it. From then on ciphertext sealed to it — in dead tuples, WAL or a
 * backup — cannot be opened by anyone.
 */
export function decideKeyActions(policy: KeyPolicy, situation: KeySituation): KeyAction[] {
  const actions: KeyAction[] = [];
  const known = new Map(situation.epochs.map((e) => [e.keyId, e]));
  const unknown = situation.onDisk.filter((id) => !known.has(id));
  if (unknown.length > 0) return [{ kind: "adopt", keyIds: unknown }];
  for (const id of situation.onDisk) if (known.get(id)?.destroyedAt) actions.push({ kind: "wipe", keyId: id });
  const current = situation.epochs.find((e) => epochState(e, situation.now) === "current");
  if (current && policy.rotateAfterMs > 0 && situation.now.getTime() - current.createdAt.getTime() >= policy.rotateAfterMs)
    actions.push({ kind: "rotate", current });
  for (const epoch of situation.epochs) {
    if (epochState(epoch, situation.now) !== "retired") continue;
    if (situation.now.getTime() < epoch.acceptUntil!.getTime() + policy.destroyGraceMs) continue;
    if ((situation.liveSecrets.get(epoch.keyId) ?? 0) > 0) continue;
    actions.push({ kind: "destroy", epoch, fileOnDisk: situation.onDisk.includes(epoch.keyId) });
  }
  return actions;
}
