import { sql, type Kysely } from "kysely";

// The reset-executor looks for newer changes of the same user by partition key while retrying.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX events_partition_key ON events (partition_key, global_position)`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error("the event log is never migrated down: restore from a backup instead");
}
