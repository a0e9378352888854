import { accessSync, constants, statSync, writeFileSync, unlinkSync } from "node:fs";
import path from "node:path";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  destroyKeyFile,
  epochsFromEvents,
  generateRecipientKeyPair,
  keyFiles,
  loadRecipientKeyPair,
  SEALING_KEYS_STREAM,
  type RecipientKeyPair,
} from "@pwsync/crypto";
import { appendToStream, countSealedSecretsByKey, readStream, type EventLog } from "@pwsync/eventlog";
import type { Logger } from "@pwsync/log";
import { newEvent } from "@pwsync/proto";
import { readFileSync } from "node:fs";
import { sql } from "kysely";
import { decideKeyActions, type KeyAction, type KeyPolicy } from "./decide.js";

export interface KeyManagerDeps {
  log: EventLog;
  logger: Logger;
  keysDir: string;
  /** The executor's live key ring: new keys are added, destroyed ones removed. */
  ring: Map<string, RecipientKeyPair>;
  policy: KeyPolicy;
  now?: () => Date;
}

// One replica at a time decides and acts (advisory lock for the transaction).
const LOCK_KEY = 0x70770005;

/**
 * One pass of key management: adopt key files no epoch names, rotate an old current key,
 * destroy retired keys no live secret needs. The stream append and the advisory lock make
 * replicas that share a keys folder act once; a replica that loses the append removes the key
 * file it just wrote.
 */
export async function manageSealingKeys(deps: KeyManagerDeps): Promise<KeyAction[]> {
  const now = deps.now?.() ?? new Date();
  const files = keyFiles(deps.keysDir);
  // Keys another replica created in a shared folder join this replica's ring.
  for (const [keyId, file] of files) if (!deps.ring.has(keyId)) deps.ring.set(keyId, loadRecipientKeyPair(readFileSync(file, "utf8")));
  return deps.log.db
    .transaction()
    .execute(async (trx) => {
      const locked = await sql<{ ok: boolean }>`SELECT pg_try_advisory_xact_lock(${LOCK_KEY}) AS ok`.execute(trx);
      if (!locked.rows[0]?.ok) return [];
      const events = await readStream(trx, SEALING_KEYS_STREAM);
      const epochs = epochsFromEvents(events);
      const onDisk = [...files.entries()].sort((a, b) => statSync(a[1]).mtimeMs - statSync(b[1]).mtimeMs).map(([id]) => id);
      let actions = decideKeyActions(deps.policy, { epochs, onDisk, liveSecrets: await countSealedSecretsByKey(trx), now });
      if (!writable(deps.keysDir)) {
        // Keys from a read-only secret store (Kubernetes Secret, compose volume): record epochs,
        // but rotating and destroying are the store's job; say what is due.
        for (const a of actions) {
          if (a.kind === "rotate")
            deps.logger.warn({ keyId: a.current.keyId }, "sealing key rotation is due, but the keys folder is read-only: add a new key to the secret store");
          if (a.kind === "destroy")
            deps.logger.warn({ keyId: a.epoch.keyId }, "retired sealing key no longer protects any secret: delete it from the secret store (and its backups)");
        }
        actions = actions.filter((a) => a.kind === "adopt");
      }
      let version = events.length;
      let nextEpoch = Math.max(0, ...epochs.map((e) => e.epoch)) + 1;
      const append = async (batch: ReturnType<typeof newEvent>[]) => {
        const result = await appendToStream(
          trx,
          SEALING_KEYS_STREAM,
          batch.map((e) => ({ ...e, metadata: { actor: "reset-executor" } })),
          {
            expectedVersion: version === 0 ? "no_stream" : version,
          },
        );
        if (!result.success) throw new Error("the sealing-keys stream moved under this replica; next pass decides again");
        version += batch.length;
      };
      const current = epochs.find((e) => !e.acceptUntil && !e.destroyedAt);
      const acceptUntil = timestampFromDate(new Date(now.getTime() + deps.policy.overlapMs));
      const afterCommit: (() => void)[] = [];
      for (const action of actions) {
        if (action.kind === "adopt") {
          // The newest file becomes current; the previous current (if any) enters its overlap.
          const batch: ReturnType<typeof newEvent>[] = [];
          let previous = current;
          for (const keyId of action.keyIds) {
            if (previous) batch.push(newEvent("SealingKeyRetired", { keyId: previous.keyId, epoch: previous.epoch, acceptUntil }));
            const publicKeyPem = deps.ring.get(keyId)!.publicKey.export({ type: "spki", format: "pem" }).toString();
            batch.push(newEvent("SealingKeyCreated", { keyId, publicKeyPem, epoch: nextEpoch, createdAt: timestampFromDate(now) }));
            previous = { keyId, epoch: nextEpoch++, publicKeyPem, createdAt: now };
          }
          await append(batch);
          deps.logger.info({ keyIds: action.keyIds }, "sealing keys adopted");
        } else if (action.kind === "rotate") {
          const pair = generateRecipientKeyPair();
          const keyFile = path.join(deps.keysDir, `${pair.keyId}.key.pem`);
          // Private key first, 0600: a key whose epoch is recorded must exist on disk.
          writeFileSync(keyFile, pair.privatePem, { mode: 0o600 });
          writeFileSync(path.join(deps.keysDir, `${pair.keyId}.pub.pem`), pair.publicPem, { mode: 0o644 });
          try {
            await append([
              newEvent("SealingKeyRetired", { keyId: action.current.keyId, epoch: action.current.epoch, acceptUntil }),
              newEvent("SealingKeyCreated", { keyId: pair.keyId, publicKeyPem: pair.publicPem, epoch: nextEpoch++, createdAt: timestampFromDate(now) }),
            ]);
          } catch (err) {
            unlinkSync(keyFile);
            throw err;
          }
          deps.ring.set(pair.keyId, loadRecipientKeyPair(pair.privatePem));
          deps.logger.warn(
            { newKeyId: pair.keyId, retiredKeyId: action.current.keyId, acceptUntil: new Date(now.getTime() + deps.policy.overlapMs).toISOString() },
            "sealing key rotated; give agents the new public key",
          );
        } else if (action.kind === "destroy") {
          await append([newEvent("SealingKeyDestroyed", { keyId: action.epoch.keyId, epoch: action.epoch.epoch })]);
          // After the commit: a destroyed record whose file survives a crash is wiped next pass.
          afterCommit.push(() => {
            const file = files.get(action.epoch.keyId);
            if (file) destroyKeyFile(file);
            deps.ring.delete(action.epoch.keyId);
            deps.logger.warn(
              { keyId: action.epoch.keyId, epoch: action.epoch.epoch },
              "sealing private key destroyed: ciphertext sealed to it anywhere (WAL, backups) can no longer be opened",
            );
          });
        } else if (action.kind === "wipe") {
          afterCommit.push(() => {
            destroyKeyFile(files.get(action.keyId)!);
            deps.ring.delete(action.keyId);
          });
        }
      }
      return { actions, afterCommit };
    })
    .then((result) => {
      if (Array.isArray(result)) return result;
      for (const run of result.afterCommit) run();
      return result.actions;
    });
}

function writable(folder: string): boolean {
  try {
    accessSync(folder, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export function startSealingKeyManager(deps: KeyManagerDeps, intervalMs = 60_000): { stop(): Promise<void> } {
  let running: Promise<unknown> = Promise.resolve();
  const pass = () => {
    running = manageSealingKeys(deps).catch((err: unknown) =>
      deps.logger.error({ err: (err as Error).message }, "sealing key management pass failed; will try again"),
    );
  };
  pass();
  const timer = setInterval(pass, intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
