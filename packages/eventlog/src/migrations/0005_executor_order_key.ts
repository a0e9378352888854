import { sql, type Kysely } from "kysely";

// The reset-executor orders one user's changes by capture time, DC and capture sequence
// (services/reset-executor/src/ordering.ts), not by the pwdLastSet-based changed_at alone, which
// two changes can share. Existing rows keep NULL and are compared by changed_at as before.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE executor_user_state ADD COLUMN order_key bytea`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error("the event log is never migrated down: restore from a backup instead");
}
