import type { Kysely, Transaction } from "kysely";
import type { Database } from "./schema.js";
import { toStoredEvent, type EventRow, type StoredEvent } from "./types.js";

export async function readStream(executor: Kysely<Database> | Transaction<Database>, streamId: string): Promise<StoredEvent[]> {
  const rows = await executor.selectFrom("events").selectAll().where("stream_id", "=", streamId).orderBy("stream_version").execute();
  return rows.map((row) => toStoredEvent(row as unknown as EventRow));
}
