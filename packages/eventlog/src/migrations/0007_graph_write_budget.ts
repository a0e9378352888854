import { sql, type Kysely } from "kysely";

// The Graph write budget as shared state: every write a reset-executor replica makes in the
// sliding window, and a pause a 429's Retry-After imposed, so a restarted or new replica knows
// them instead of starting with a full budget.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE TABLE graph_write_budget (id bigserial PRIMARY KEY, at timestamptz NOT NULL)`.execute(db);
  await sql`CREATE INDEX graph_write_budget_at ON graph_write_budget (at)`.execute(db);
  await sql`CREATE TABLE graph_write_pause (id smallint PRIMARY KEY CHECK (id = 1), until timestamptz NOT NULL)`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error("the event log is never migrated down: restore from a backup instead");
}
