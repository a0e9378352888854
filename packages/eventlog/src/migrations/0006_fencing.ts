import { sql, type Kysely } from "kysely";

// Fencing (ARCHITECTURE.md, "Fencing"): a token per partition that every new owner raises, and
// the Graph password writes that may still be in flight, so that no older password can land
// after a newer one, whoever sent it.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE consumer_checkpoints ADD COLUMN fence bigint NOT NULL DEFAULT 0`.execute(db);
  await sql`
    CREATE TABLE graph_write_attempts (
      attempt_id uuid PRIMARY KEY,
      entra_user_id text NOT NULL,
      change_id text NOT NULL,
      expires_at timestamptz NOT NULL
    )`.execute(db);
  await sql`CREATE INDEX graph_write_attempts_user ON graph_write_attempts (entra_user_id, expires_at)`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error("the event log is never migrated down: restore from a backup instead");
}
