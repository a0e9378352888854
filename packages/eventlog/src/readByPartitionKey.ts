import type { Kysely } from "kysely";
import type { Database } from "./schema.js";
import { toStoredEvent, type EventRow, type StoredEvent } from "./types.js";

/**
 * Committed events of some types under one partition key after a position, e.g. the reset-
 * executor asking "has a newer change for this user arrived behind the one I am retrying?".
 */
export async function readByPartitionKey(
  db: Kysely<Database>,
  partitionKey: string,
  types: readonly string[],
  afterGlobalPosition: bigint,
): Promise<StoredEvent[]> {
  const rows = await db
    .selectFrom("events")
    .selectAll()
    .where("partition_key", "=", partitionKey)
    .where("type", "in", types)
    .where("global_position", ">", afterGlobalPosition.toString())
    .orderBy("global_position")
    .execute();
  return rows.map((row) => toStoredEvent(row as unknown as EventRow));
}

/** Members of a consumer group that heartbeated recently (replicas sharing a budget). */
export async function liveMembers(db: Kysely<Database>, group: string, withinSeconds = 5): Promise<number> {
  const row = await db
    .selectFrom("consumer_members")
    .select((eb) => eb.fn.countAll<string>().as("n"))
    .where("group_name", "=", group)
    .where("heartbeat_at", ">", new Date(Date.now() - withinSeconds * 1000))
    .executeTakeFirst();
  return Math.max(1, Number(row?.n ?? 1));
}
