import { describe, expect, it } from "vitest";
import { decodeEnvelope, encodeEnvelope } from "./envelope.js";
import { generateRecipientKeyPair, loadRecipientKeyPair, loadRecipientPublicKey, seal, unseal, UnsealError } from "./seal.js";

const canary = "Seal-Canary-π-4821!";
const changeId = "6f1c2a4e-0d2b-4a51-9a57-1e0e3f1b6a10";

function setup() {
  const generated = generateRecipientKeyPair();
  const pair = loadRecipientKeyPair(generated.privatePem);
  return { recipient: loadRecipientPublicKey(generated.publicPem), ring: new Map([[pair.keyId, pair]]) };
}

describe("seal / unseal", () => {
  it("round-trips a Unicode password and the envelope never contains it", () => {
    const { recipient, ring } = setup();
    const sealed = seal(recipient, changeId, Buffer.from(canary, "utf8"));
    const bytes = encodeEnvelope(sealed);
    expect(Buffer.from(bytes).includes(Buffer.from(canary))).toBe(false);
    expect(unseal(ring, changeId, decodeEnvelope(bytes)).toString("utf8")).toBe(canary);
  });

  it("uses a fresh ephemeral key and nonce each time", () => {
    const { recipient } = setup();
    const a = seal(recipient, changeId, Buffer.from(canary));
    const b = seal(recipient, changeId, Buffer.from(canary));
    expect(Buffer.from(a.ephemeralPublicKey).equals(Buffer.from(b.ephemeralPublicKey))).toBe(false);
    expect(Buffer.from(a.ciphertext).equals(Buffer.from(b.ciphertext))).toBe(false);
  });

  it("refuses a blob moved to another change id", () => {
    const { recipient, ring } = setup();
    const sealed = seal(recipient, changeId, Buffer.from(canary));
    expect(() => unseal(ring, "00000000-0000-4000-8000-000000000000", sealed)).toThrow(UnsealError);
  });

  it("refuses a tampered ciphertext and names an unknown key id", () => {
    const { recipient, ring } = setup();
    const sealed = seal(recipient, changeId, Buffer.from(canary));
    const tampered = { ...sealed, ciphertext: Buffer.from(sealed.ciphertext).map((b, i) => (i === 0 ? b ^ 1 : b)) };
    expect(() => unseal(ring, changeId, tampered)).toThrow(/failed authentication/);
    expect(() => unseal(ring, changeId, { ...sealed, keyId: "0000000000000000" })).toThrow(/no private key for key id 0000000000000000/);
  });

  it("opens secrets sealed to an older key after rotation", () => {
    const old = setup();
    const next = generateRecipientKeyPair();
    const nextPair = loadRecipientKeyPair(next.privatePem);
    const ring = new Map([...old.ring, [nextPair.keyId, nextPair]]);
    const sealedOld = seal(old.recipient, changeId, Buffer.from(canary));
    const sealedNew = seal(loadRecipientPublicKey(next.publicPem), changeId, Buffer.from(canary));
    expect(unseal(ring, changeId, sealedOld).toString()).toBe(canary);
    expect(unseal(ring, changeId, sealedNew).toString()).toBe(canary);
  });
});
