import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from "node:crypto";
import { readFile, rename, writeFile } from "node:fs/promises";

function scrypt(password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(password, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key))));
}

/** Default scrypt cost. Benchmarks lower it (option scryptCost) so hashing is not what they measure. */
export const DEFAULT_SCRYPT_COST = 16384;
const KEY_LENGTH = 32;

/** Encoded as `scrypt$N$r$p$saltB64$hashB64` so parameters can change without breaking stored hashes. */
export async function hashPassword(password: string, cost: number = DEFAULT_SCRYPT_COST): Promise<string> {
  const salt = randomBytes(16);
  const params = { N: cost, r: 8, p: 1 };
  const hash = await scrypt(password, salt, KEY_LENGTH, params);
  return ["scrypt", params.N, params.r, params.p, salt.toString("base64"), hash.toString("base64")].join("$");
}

export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const [scheme, n, r, p, saltB64, hashB64] = encoded.split("$");
  if (scheme !== "scrypt" || !saltB64 || !hashB64) return false;
  const expected = Buffer.from(hashB64, "base64");
  const actual = await scrypt(password, Buffer.from(saltB64, "base64"), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
  });
  return timingSafeEqual(actual, expected);
}

export interface SandboxCounters {
  writes: number;
  passwordsSet: number;
  throttled: number;
  injectedFailures: number;
  tokensIssued: number;
  tokenFailures: number;
}

/** Everything the sandbox keeps between requests. Holds password hashes only, never a plaintext. */
export interface SandboxState {
  passwordHashes: Record<string, string>;
  counters: SandboxCounters;
  /** HMAC key for access tokens, persisted so tokens survive a sandbox restart. */
  tokenKey: string;
}

export function emptyState(): SandboxState {
  return {
    passwordHashes: {},
    counters: { writes: 0, passwordsSet: 0, throttled: 0, injectedFailures: 0, tokensIssued: 0, tokenFailures: 0 },
    tokenKey: randomBytes(32).toString("base64"),
  };
}

export async function loadState(path: string | undefined): Promise<SandboxState> {
  if (!path) return emptyState();
  try {
    const stored = JSON.parse(await readFile(path, "utf8")) as Partial<SandboxState>;
    const fresh = emptyState();
    return {
      passwordHashes: stored.passwordHashes ?? {},
      counters: { ...fresh.counters, ...stored.counters },
      tokenKey: stored.tokenKey ?? fresh.tokenKey,
    };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return emptyState();
    throw err;
  }
}

/** Serialises writes so a slow write never lands after a newer one. */
export class StatePersister {
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly path: string | undefined) {}

  save(state: SandboxState): Promise<void> {
    if (!this.path) return Promise.resolve();
    const path = this.path;
    const snapshot = JSON.stringify(state, null, 2);
    this.chain = this.chain.then(async () => {
      const tmp = `${path}.${process.pid}.tmp`;
      await writeFile(tmp, snapshot, { mode: 0o600 });
      await rename(tmp, path);
    });
    return this.chain;
  }
}
