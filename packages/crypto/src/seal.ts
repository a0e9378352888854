import { create } from "@bufbuild/protobuf";
import { SealedSecretSchema, type SealedSecret } from "@pwsync/proto";
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
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

// A sealed password has one shape: the generated SealedSecret message (sealed.proto). seal()
// builds it and unseal() reads it, the agent sends it to ingest as it is, and sealed_secrets
// keeps its protobuf bytes (envelope.ts), so no second type needs converting to and from; the
// proto file, guarded by `buf breaking`, is the format's only definition.

export class UnsealError extends Error {}

// DER framing of X25519 keys (RFC 8410): a fixed prefix, then the 32 raw key bytes.
const SPKI_X25519_PREFIX = Buffer.from("302a300506032b656e032100", "hex");

function rawPublicKey(key: KeyObject): Buffer {
  const spki = key.export({ type: "spki", format: "der" });
  if (spki.length !== SPKI_X25519_PREFIX.length + 32 || !spki.subarray(0, SPKI_X25519_PREFIX.length).equals(SPKI_X25519_PREFIX))
    throw new Error("not an X25519 key");
  return spki.subarray(SPKI_X25519_PREFIX.length);
}

/**
 * Raw keys enter as JWK, not DER: Node hands a JWK's key bytes straight to OpenSSL's raw-key
 * constructor, while DER goes through OpenSSL 3's generic decoder, about ten times slower (64
 * vs 6 µs per key here; it was a tenth of the executor's CPU per change).
 */
function publicKeyFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new UnsealError(`ephemeral public key must be 32 bytes, got ${raw.length}`);
  return createPublicKey({ key: { kty: "OKP", crv: "X25519", x: Buffer.from(raw).toString("base64url") }, format: "jwk" });
}

/**
 * A fresh ephemeral key from 32 random bytes imported as PKCS#8, not generateKeyPairSync: on
 * Node 20 a process sealing under GC pressure hung for good (scale-out test) — exporting a
 * generated key held its lock while a GC ran the generation job's destructor, which waits for
 * the same lock. Imported keys have no such job.
 */
function ephemeralKeyPair(): { privateKey: KeyObject; publicRaw: Buffer } {
  const secret = randomBytes(32);
  // As JWK for speed (see publicKeyFromRaw): 27 µs per key pair instead of 350 µs, on every
  // seal an agent makes. Node builds a private OKP key from `d` alone; `x` must be a string but
  // is not read, and the public half is derived from the private key below. The base64 copy
  // cannot be zeroed; it opens only this one seal, whose password is in this process anyway.
  const d = secret.toString("base64url");
  secret.fill(0);
  const privateKey = createPrivateKey({ key: { kty: "OKP", crv: "X25519", d, x: "" }, format: "jwk" });
  return { privateKey, publicRaw: rawPublicKey(createPublicKey(privateKey)) };
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
  /** The 32 raw bytes, exported once at load rather than per seal. */
  raw: Buffer;
}

export function loadRecipientPublicKey(pem: string): RecipientPublicKey {
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType !== "x25519") throw new Error(`sealing key must be X25519, got ${key.asymmetricKeyType}`);
  return { keyId: keyIdOf(key), key, raw: rawPublicKey(key) };
}

/** Seals `password` (UTF-8 bytes; the caller zeroes its own copy afterwards) for one change. */
export function seal(recipient: RecipientPublicKey, changeId: string, password: Uint8Array): SealedSecret {
  const ephemeral = ephemeralKeyPair();
  const shared = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: recipient.key });
  const key = deriveKey(shared, ephemeral.publicRaw, recipient.raw);
  const nonce = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, nonce);
  cipher.setAAD(associatedData(recipient.keyId, changeId));
  const ciphertext = Buffer.concat([cipher.update(password), cipher.final()]);
  const tag = cipher.getAuthTag();
  shared.fill(0);
  key.fill(0);
  return create(SealedSecretSchema, { version: SEAL_VERSION, keyId: recipient.keyId, ephemeralPublicKey: ephemeral.publicRaw, nonce, ciphertext, tag });
}

export interface RecipientKeyPair {
  keyId: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicRaw: Buffer;
}

export function loadRecipientKeyPair(privatePem: string): RecipientKeyPair {
  const privateKey = createPrivateKey(privatePem);
  if (privateKey.asymmetricKeyType !== "x25519") throw new Error(`sealing key must be X25519, got ${privateKey.asymmetricKeyType}`);
  const publicKey = createPublicKey(privateKey);
  return { keyId: keyIdOf(publicKey), privateKey, publicKey, publicRaw: rawPublicKey(publicKey) };
}

export function generateRecipientKeyPair(): { privatePem: string; publicPem: string; keyId: string } {
  const { privateKey } = ephemeralKeyPair();
  const publicKey = createPublicKey(privateKey);
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
export function unseal(keys: ReadonlyMap<string, RecipientKeyPair>, changeId: string, sealed: SealedSecret): Buffer {
  if (sealed.version !== SEAL_VERSION) throw new UnsealError(`unsupported sealed envelope version ${sealed.version}`);
  const recipient = keys.get(sealed.keyId);
  if (!recipient) throw new UnsealError(`no private key for key id ${sealed.keyId} (known: ${[...keys.keys()].join(", ") || "none"})`);
  if (sealed.nonce.length !== 12 || sealed.tag.length !== 16) throw new UnsealError("malformed sealed envelope (nonce/tag length)");
  const ephemeralRaw = Buffer.from(sealed.ephemeralPublicKey);
  const shared = diffieHellman({ privateKey: recipient.privateKey, publicKey: publicKeyFromRaw(ephemeralRaw) });
  const key = deriveKey(shared, ephemeralRaw, recipient.publicRaw);
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
