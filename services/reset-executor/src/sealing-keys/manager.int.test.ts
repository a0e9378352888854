// Crypto-shredding for real: the key manager rotates, keeps a retired key while a live sealed
// secret needs it, and destroys it after — then the saved ciphertext (as WAL or a backup would
// keep it) cannot be opened. Real Postgres, real key files.
import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import {
  acceptedKeyIds,
  decodeEnvelope,
  encodeEnvelope,
  epochsFromEvents,
  generateRecipientKeyPair,
  loadKeyRing,
  loadRecipientPublicKey,
  seal,
  SEALING_KEYS_STREAM,
  unseal,
} from "@pwsync/crypto";
import { openEventLog, readStream, shredSealedSecret, storeSealedSecret, type EventLog } from "@pwsync/eventlog";
import { createLogger } from "@pwsync/log";
import { createTestDatabase } from "@pwsync/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { manageSealingKeys } from "./manager.js";

const DAY = 86_400_000;
const canary = "Shred-Canary-42!x";
let log: EventLog;
let keysDir: string;
let clock = new Date("2026-01-01T00:00:00Z");
const logger = createLogger({ service: "test", destination: new Writable({ write: (_c, _e, cb) => cb() }) });

beforeAll(async () => {
  log = await openEventLog(await createTestDatabase("keys"));
  keysDir = mkdtempSync(path.join(tmpdir(), "pwsync-keys-"));
  const first = generateRecipientKeyPair();
  writeFileSync(path.join(keysDir, `${first.keyId}.key.pem`), first.privatePem, { mode: 0o600 });
});
afterAll(async () => {
  await log?.close();
});

describe("sealing key rotation and destruction", () => {
  it("adopts, rotates on schedule, keeps the old key while a sealed secret needs it, then destroys it for good", async () => {
    const ring = loadKeyRing(keysDir);
    const deps = { log, logger, keysDir, ring, policy: { rotateAfterMs: 30 * DAY, overlapMs: 7 * DAY, destroyGraceMs: 10 * 60_000 }, now: () => clock };
    const epochs = async () => epochsFromEvents(await readStream(log.db, SEALING_KEYS_STREAM));

    expect((await manageSealingKeys(deps)).map((a) => a.kind)).toEqual(["adopt"]);
    const [k1] = await epochs();
    expect(k1).toMatchObject({ epoch: 1 });

    // A change sealed to k1 is in flight.
    const changeId = randomUUID();
    const envelope = encodeEnvelope(seal(loadRecipientPublicKey(k1!.publicKeyPem), changeId, Buffer.from(canary)));
    await storeSealedSecret(log.db, changeId, k1!.keyId, envelope);

    clock = new Date(clock.getTime() + 30 * DAY);
    expect((await manageSealingKeys(deps)).map((a) => a.kind)).toEqual(["rotate"]);
    const [, k2] = await epochs();
    expect(k2).toMatchObject({ epoch: 2 });
    expect(ring.has(k2!.keyId)).toBe(true);
    expect(acceptedKeyIds([], await epochs(), clock)).toEqual(new Set([k1!.keyId, k2!.keyId]));

    // Past overlap and grace: ingest no longer accepts k1, but a live secret still needs it.
    clock = new Date(clock.getTime() + 8 * DAY);
    expect(acceptedKeyIds([k1!.keyId], await epochs(), clock)).toEqual(new Set([k2!.keyId]));
    expect(await manageSealingKeys(deps)).toEqual([]);
    expect(unseal(ring, changeId, decodeEnvelope(envelope)).toString()).toBe(canary);

    // The change ends: its secret is shredded, and the next pass destroys k1.
    await shredSealedSecret(log.db, changeId);
    expect((await manageSealingKeys(deps)).map((a) => a.kind)).toEqual(["destroy"]);
    expect((await epochs())[0]!.destroyedAt).toBeInstanceOf(Date);
    expect(readdirSync(keysDir).filter((n) => n.endsWith(".key.pem"))).toEqual([`${k2!.keyId}.key.pem`]);
    expect(existsSync(path.join(keysDir, `${k1!.keyId}.key.pem`))).toBe(false);
    // The ciphertext a backup or WAL kept is now unreadable, by this process or a fresh one.
    expect(() => unseal(ring, changeId, decodeEnvelope(envelope))).toThrow();
    expect(() => unseal(loadKeyRing(keysDir), changeId, decodeEnvelope(envelope))).toThrow();
    expect(await manageSealingKeys(deps)).toEqual([]);
  });
});
