import { sql, type Kysely, type Transaction } from "kysely";
import type { Database } from "./schema.js";

type Executor = Kysely<Database> | Transaction<Database>;

/** Stores a sealed (encrypted) password; the database never sees plaintext. Idempotent per change. */
export async function storeSealedSecret(executor: Executor, changeId: string, keyId: string, envelope: Uint8Array): Promise<void> {
  await executor
    .insertInto("sealed_secrets")
    .values({ change_id: changeId, key_id: keyId, envelope: Buffer.from(envelope) })
    .onConflict((oc) => oc.column("change_id").doNothing())
    .execute();
}

/** Stores many sealed secrets in one statement (ingest's group commit). Idempotent per change. */
export async function storeSealedSecrets(executor: Executor, secrets: ReadonlyArray<{ changeId: string; keyId: string; envelope: Uint8Array }>): Promise<void> {
  if (secrets.length === 0) return;
  await sql`
    INSERT INTO sealed_secrets (change_id, key_id, envelope)
    SELECT * FROM unnest(${secrets.map((s) => s.changeId)}::uuid[], ${secrets.map((s) => s.keyId)}::text[], ${secrets.map((s) => Buffer.from(s.envelope))}::bytea[])
    ON CONFLICT (change_id) DO NOTHING`.execute(executor);
}

export async function loadSealedSecret(executor: Executor, changeId: string): Promise<{ keyId: string; envelope: Buffer } | undefined> {
  const row = await executor.selectFrom("sealed_secrets").select(["key_id", "envelope"]).where("change_id", "=", changeId).executeTakeFirst();
  return row ? { keyId: row.key_id, envelope: row.envelope } : undefined;
}

/** Deletes the sealed secret; returns whether there was one. */
export async function shredSealedSecret(executor: Executor, changeId: string): Promise<boolean> {
  const result = await executor.deleteFrom("sealed_secrets").where("change_id", "=", changeId).executeTakeFirst();
  return result.numDeletedRows > 0n;
}

/** How many sealed secrets each sealing key still protects (key rotation decides on it). */
export async function countSealedSecretsByKey(executor: Executor): Promise<Map<string, number>> {
  const rows = await executor
    .selectFrom("sealed_secrets")
    .select(["key_id", (eb) => eb.fn.countAll<string>().as("n")])
    .groupBy("key_id")
    .execute();
  return new Map(rows.map((r) => [r.key_id, Number(r.n)]));
}
