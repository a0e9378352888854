import type { Kysely } from "kysely";
import type { Database } from "./schema.js";
import { toStoredEvent, type EventRow, type StoredEvent } from "./types.js";

/**
 * Events of some types in the given streams, for reports and tools (demo, bench, admin) that
 * ask "which of these changes have finished?". Asking by stream rather than "after position N"
 * matters: a position cursor would miss an event whose transaction committed late.
 */
export async function readStreamsEventsByType(db: Kysely<Database>, streamIds: readonly string[], types: readonly string[]): Promise<StoredEvent[]> {
  if (streamIds.length === 0) return [];
  const rows = await db.selectFrom("events").selectAll().where("stream_id", "in", streamIds).where("type", "in", types).orderBy("global_position").execute();
  return rows.map((row) => toStoredEvent(row as unknown as EventRow));
}

/** Events of some types recorded at or after `since` (by the events_type_created index), in log order. */
export async function readEventsByTypeSince(db: Kysely<Database>, types: readonly string[], since: Date): Promise<StoredEvent[]> {
  const rows = await db.selectFrom("events").selectAll().where("type", "in", types).where("created_at", ">=", since).orderBy("global_position").execute();
  return rows.map((row) => toStoredEvent(row as unknown as EventRow));
}
