import type { Kysely } from "kysely";
import type { Database } from "./schema.js";

/**
 * Failed changes whose sealed password is still stored and whose failure is older than
 * `failedBefore`: what the secret reaper shreds once the retry window has passed.
 */
export async function failedChangesWithSecret(
  db: Kysely<Database>,
  failedBefore: Date,
  limit = 100,
): Promise<Array<{ changeId: string; streamId: string; streamVersion: number }>> {
  const rows = await db
    .selectFrom("change_summaries as c")
    .innerJoin("sealed_secrets as s", (join) => join.on((eb) => eb(eb.cast("c.change_id", "uuid"), "=", eb.ref("s.change_id"))))
    .innerJoin("streams as st", "st.stream_id", "c.stream_id")
    .select(["c.change_id", "c.stream_id", "st.version"])
    .where("c.state", "=", "failed")
    .where("c.updated_at", "<", failedBefore)
    .orderBy("c.updated_at")
    .limit(limit)
    .execute();
  return rows.map((r) => ({ changeId: r.change_id, streamId: r.stream_id, streamVersion: r.version }));
}
