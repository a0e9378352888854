import { sql, type Kysely } from "kysely";

// Last heartbeat of every agent, so a domain controller that went quiet is visible. A table,
// not events: heartbeats are frequent state, not history worth auditing.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE agent_status (
      agent_id text PRIMARY KEY,
      domain_controller text NOT NULL,
      agent_version text NOT NULL,
      filter_loaded boolean NOT NULL,
      queue_depth bigint NOT NULL,
      oldest_queued_age_seconds bigint NOT NULL,
      last_change_seen_at timestamptz,
      last_heartbeat_at timestamptz NOT NULL
    )`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error("the event log is never migrated down: restore from a backup instead");
}
