import type { Kysely, Transaction } from "kysely";
import type { Database } from "./schema.js";
import { toStoredEvent, type EventRow, type StoredEvent } from "./types.js";

export async function readStream(executor: Kysely<Database> | Transaction<Database>, streamId: string): Promise<StoredEvent[]> {
  const rows = await executor.selectFrom("events").selectAll().where("stream_id", "=", streamId).orderBy("stream_version").execute();
  return rows.map((row) => toStoredEvent(row as unknown as EventRow));
}

/** The first event of each of the given streams (ingest's answer to a re-sent change). */
export async function readFirstEvents(executor: Kysely<Database> | Transaction<Database>, streamIds: readonly string[]): Promise<StoredEvent[]> {
  if (streamIds.length === 0) return [];
  const rows = await executor
    .selectFrom("events")
    .selectAll()
    .where("stream_id", "in", [...new Set(streamIds)])
    .where("stream_version", "=", 1)
    .execute();
  return rows.map((row) => toStoredEvent(row as unknown as EventRow));
}
