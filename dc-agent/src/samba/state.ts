import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import path from "node:path";
import type { AccountMemory } from "./decide.js";

/**
 * What the Samba source remembers between runs, in `<dataDir>/samba/accounts.json`: per
 * objectGUID the last password write handled (pwdLastSet, key version, synced or only
 * recorded) — never a password. Written whole (temp file, fsync, rename) after each delivery.
 */
export interface SambaState {
  baseline: { startedAt: bigint; done: boolean } | undefined;
  lastDeliveryAt: Date | undefined;
  accounts: Map<string, AccountMemory>;
}

interface StoredState {
  version: 1;
  baseline?: { startedAt: string; done: boolean };
  lastDeliveryAt?: string;
  accounts: Record<string, { pwdLastSet: string; keyVersion?: number; synced: boolean }>;
}

export function readSambaState(file: string): SambaState {
  if (!existsSync(file)) return { baseline: undefined, lastDeliveryAt: undefined, accounts: new Map() };
  const raw = JSON.parse(readFileSync(file, "utf8")) as StoredState;
  return {
    baseline: raw.baseline ? { startedAt: BigInt(raw.baseline.startedAt), done: raw.baseline.done } : undefined,
    lastDeliveryAt: raw.lastDeliveryAt ? new Date(raw.lastDeliveryAt) : undefined,
    accounts: new Map(
      Object.entries(raw.accounts).map(([guid, a]) => [guid, { pwdLastSet: BigInt(a.pwdLastSet), keyVersion: a.keyVersion, synced: a.synced }]),
    ),
  };
}

export function writeSambaState(file: string, state: SambaState): void {
  const stored: StoredState = {
    version: 1,
    ...(state.baseline ? { baseline: { startedAt: state.baseline.startedAt.toString(), done: state.baseline.done } } : {}),
    ...(state.lastDeliveryAt ? { lastDeliveryAt: state.lastDeliveryAt.toISOString() } : {}),
    accounts: Object.fromEntries(
      [...state.accounts].map(([guid, a]) => [
        guid,
        { pwdLastSet: a.pwdLastSet.toString(), ...(a.keyVersion !== undefined ? { keyVersion: a.keyVersion } : {}), synced: a.synced },
      ]),
    ),
  };
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    writeSync(fd, JSON.stringify(stored));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  const dir = openSync(path.dirname(file), "r");
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
