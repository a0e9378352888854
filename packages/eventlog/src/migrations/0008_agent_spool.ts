import { sql, type Kysely } from "kysely";

// Agents report the LSA filter's spool (files not drained yet, oldest age) so the watchdog can
// alarm on changes stuck on a DC's disk (issue 11: they used to stay there unnoticed).
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE agent_status ADD COLUMN spool_depth bigint NOT NULL DEFAULT 0, ADD COLUMN oldest_spooled_age_seconds bigint NOT NULL DEFAULT 0`.execute(
    db,
  );
}

export async function down(): Promise<void> {
  throw new Error("the event log is never migrated down: restore from a backup instead");
}
