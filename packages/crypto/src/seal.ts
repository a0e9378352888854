import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  type KeyObject,
} from "node:crypto";

/**
 * Sealing, envelope version 1: ephemeral-static X25519 ECDH → HKDF-SHA256 → AES-256-GCM.
 * - salt = ephemeral public key ‖ recipient public key (binds the key to both parties)
 * - info = "pwsync/seal/v1"
 * - associated data = "pwsync/seal/v1" ‖ 0x00 ‖ key id ‖ 0x00 ‖ change id, so a sealed password
 *   cannot be replayed under another change id or presented as sealed to another key.
 * All of it is node:crypto; no hand-written primitives.
 */
export const SEAL_VERSION = 1;
const INFO = Buffer.from("pwsync/seal/v1");

export interface Sealed {
  version: number;
  keyId: string;
  ephemeralPublicKey: Uint8Array;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
  tag: Uint8Array;
}

export class UnsealError extends Error {}

function rawPublicKey(key: KeyObject): Buffer {
  // The JWK "x" member of an OKP key is the raw 32-byte public key.
  const jwk = key.export({ format: "jwk" });
  if (!jwk.x) throw new Error("not an X25519 key");
  return Buffer.from(jwk.x, "base64url");
}

function publicKeyFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new UnsealError(`ephemeral public key must be 32 bytes, got ${raw.length}`);
  return createPublicKey({ key: { kty: "OKP", crv: "X25519", x: Buffer.from(raw).toString("base64url") }, format: "jwk" });
}

export function keyIdOf(publicKey: KeyObject): string {
  return createHash("sha256").update(rawPublicKey(publicKey)).digest("hex").slice(0, 16);
}

function associatedData(keyId: string, changeId: string): Buffer {
  return Buffer.concat([INFO, Buffer.from([0]), Buffer.from(keyId), Buffer.from([0]), Buffer.from(changeId)]);
}

function deriveKey(shared: Buffer, ephemeralRaw: Buffer, recipientRaw: Buffer): Buffer {
  return Buffer.from(hkdfSync("sha256", shared, Buffer.concat([ephemeralRaw, recipientRaw]), INFO, 32));
}

export interface RecipientPublicKey {
  keyId: string;
  key: KeyObject;
}

export function loadRecipientPublicKey(pem: string): RecipientPublicKey {
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType !== "x25519") throw new Error(`sealing key must be X25519, got ${key.asymmetricKeyType}`);
  return { keyId: keyIdOf(key), key };
}

/** Seals `password` (UTF-8 bytes; the caller zeroes its own copy afterwards) for one change. */
export function seal(recipient: RecipientPublicKey, changeId: string, password: Uint8Array): Sealed {
  const ephemeral = generateKeyPairSync("x25519");
  const shared = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: recipient.key });
  const ephemeralRaw = rawPublicKey(ephemeral.publicKey);
  const key = deriveKey(shared, ephemeralRaw, rawPublicKey(recipient.key));
  const nonce = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, nonce);
  cipher.setAAD(associatedData(recipient.keyId, changeId));
  const ciphertext = Buffer.concat([cipher.update(password), cipher.final()]);
  const tag = cipher.getAuthTag();
  shared.fill(0);
  key.fill(0);
  return { version: SEAL_VERSION, keyId: recipient.keyId, ephemeralPublicKey: ephemeralRaw, nonce, ciphertext, tag };
}

export interface RecipientKeyPair {
  keyId: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export function loadRecipientKeyPair(privatePem: string): RecipientKeyPair {
  const privateKey = createPrivateKey(privatePem);
  if (privateKey.asymmetricKeyType !== "x25519") throw new Error(`sealing key must be X25519, got ${privateKey.asymmetricKeyType}`);
  const publicKey = createPublicKey(privateKey);
  return { keyId: keyIdOf(publicKey), privateKey, publicKey };
}

export function generateRecipientKeyPair(): { privatePem: string; publicPem: string; keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync("x25519");
  return {
    privatePem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    keyId: keyIdOf(publicKey),
  };
}

/**
 * Opens a sealed password with whichever of `keys` it was sealed to (rotation: old keys stay
 * until no sealed secret refers to them). Returns the UTF-8 bytes; zero them after use.
 */
export function unseal(keys: ReadonlyMap<string, RecipientKeyPair>, changeId: string, sealed: Sealed): Buffer {
  if (sealed.version !== SEAL_VERSION) throw new UnsealError(`unsupported sealed envelope version ${sealed.version}`);
  const recipient = keys.get(sealed.keyId);
  if (!recipient) throw new UnsealError(`no private key for key id ${sealed.keyId} (known: ${[...keys.keys()].join(", ") || "none"})`);
  if (sealed.nonce.length !== 12 || sealed.tag.length !== 16) throw new UnsealError("malformed sealed envelope (nonce/tag length)");
  const ephemeralRaw = Buffer.from(sealed.ephemeralPublicKey);
  const shared = diffieHellman({ privateKey: recipient.privateKey, publicKey: publicKeyFromRaw(ephemeralRaw) });
  const key = deriveKey(shared, ephemeralRaw, rawPublicKey(recipient.publicKey));
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, sealed.nonce);
    decipher.setAAD(associatedData(sealed.keyId, changeId));
    decipher.setAuthTag(sealed.tag);
    return Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]);
  } catch {
    throw new UnsealError(`sealed password for change ${changeId} failed authentication (tampered, or sealed for another change)`);
  } finally {
    shared.fill(0);
    key.fill(0);
  }
}
