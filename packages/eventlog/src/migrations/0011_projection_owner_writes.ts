import { sql, type Kysely } from "kysely";

// The change_states projection (0010) is what the admin API and Grafana show as each change's
// state. Written with the appender's rights, the services' role needed UPDATE on it, so a
// compromised service could make a failed change look set without touching the audit trail.
// The trigger now writes as the schema owner, and grantServiceRole takes writes on the
// projection away from the services (search_path pinned, as a definer function must).
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER FUNCTION change_states_on_append() SECURITY DEFINER SET search_path = public, pg_temp`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error("the event log is never migrated down: restore from a backup instead");
}
