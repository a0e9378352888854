import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { loadRecipientKeyPair, type RecipientKeyPair } from "./seal.js";

/**
 * The reset-executor's private sealing keys: every `*.key.pem` in a folder, by key id. Rotation =
 * add a new key, point agents at its public key, remove the old one once no sealed secret
 * still uses it.
 */
export function loadKeyRing(folder: string): Map<string, RecipientKeyPair> {
  const ring = new Map<string, RecipientKeyPair>();
  for (const name of readdirSync(folder).filter((n) => n.endsWith(".key.pem")).sort()) {
    const pair = loadRecipientKeyPair(readFileSync(path.join(folder, name), "utf8"));
    ring.set(pair.keyId, pair);
  }
  if (ring.size === 0) throw new Error(`no sealing private keys (*.key.pem) in ${folder}`);
  return ring;
}
