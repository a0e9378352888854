import { openSync, closeSync, fstatSync, fsyncSync, readdirSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { loadRecipientKeyPair, type RecipientKeyPair } from "./seal.js";

/**
 * The reset-executor's private sealing keys: every `*.key.pem` in a folder, by key id. Rotation =
 * add a new key, point agents at its public key, remove the old one once no sealed secret
 * still uses it.
 */
export function loadKeyRing(folder: string): Map<string, RecipientKeyPair> {
  const ring = new Map<string, RecipientKeyPair>();
  for (const name of readdirSync(folder)
    .filter((n) => n.endsWith(".key.pem"))
    .sort()) {
    const pair = loadRecipientKeyPair(readFileSync(path.join(folder, name), "utf8"));
    ring.set(pair.keyId, pair);
  }
  if (ring.size === 0) throw new Error(`no sealing private keys (*.key.pem) in ${folder}`);
  return ring;
}

/** Private key files in `folder` by the key id of the key each holds. */
export function keyFiles(folder: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const name of readdirSync(folder)
    .filter((n) => n.endsWith(".key.pem"))
    .sort()) {
    const file = path.join(folder, name);
    files.set(loadRecipientKeyPair(readFileSync(file, "utf8")).keyId, file);
  }
  return files;
}

/**
 * Destroys a private key file: overwritten with random bytes and flushed before it is unlinked,
 * so the key is not left in the file's old blocks for a casual undelete. (Copy-on-write and
 * journaling file systems and backups of the keys folder can still hold it: keep the keys
 * folder out of backups — docs/deploy.md.)
 */
export function destroyKeyFile(file: string): void {
  const fd = openSync(file, "r+");
  try {
    const size = fstatSync(fd).size;
    writeSync(fd, randomBytes(Math.max(size, 1)), 0, Math.max(size, 1), 0);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  unlinkSync(file);
}
