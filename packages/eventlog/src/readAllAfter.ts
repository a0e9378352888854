import { sql, type Kysely } from "kysely";
import type { Position } from "./readPartitionBatch.js";
import type { Database } from "./schema.js";
import { toStoredEvent, type EventRow, type StoredEvent } from "./types.js";

/**
 * Events of every partition after `after`, in commit order, only from transactions that have
 * finished (the same rule as consumers use), so a tail never skips a late-committing writer.
 */
export async function readAllAfter(
  db: Kysely<Database>,
  after: Position,
  limit: number,
  filter: { types?: readonly string[]; streamId?: string } = {},
): Promise<{ events: StoredEvent[]; scannedTo: Position | null }> {
  const types = filter.types && filter.types.length > 0 ? filter.types : null;
  const result = await sql<EventRow & { wanted: boolean }>`
    SELECT global_position, transaction_id, stream_id, stream_version, partition, partition_key, type, data, metadata, created_at,
           (${types}::text[] IS NULL OR type = ANY(${types}::text[])) AND (${filter.streamId ?? null}::text IS NULL OR stream_id = ${filter.streamId ?? null}) AS wanted
      FROM events
     WHERE (transaction_id, global_position) > (${after.transactionId.toString()}::xid8, ${after.globalPosition.toString()}::bigint)
       AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
     ORDER BY transaction_id, global_position
     LIMIT ${limit}`.execute(db);
  const last = result.rows.at(-1);
  return {
    events: result.rows.filter((r) => r.wanted).map(toStoredEvent),
    scannedTo: last ? { transactionId: BigInt(last.transaction_id), globalPosition: BigInt(last.global_position) } : null,
  };
}

/**
 * Where a tail starts: after the given global position, or (0) after everything already
 * readable, so only events committed from now on follow.
 */
export async function tailStart(db: Kysely<Database>, afterGlobalPosition: bigint): Promise<Position> {
  const result =
    afterGlobalPosition > 0n
      ? await sql<{ transaction_id: string; global_position: string }>`
          SELECT transaction_id, global_position FROM events WHERE global_position = ${afterGlobalPosition.toString()}`.execute(db)
      : await sql<{ transaction_id: string; global_position: string }>`
          SELECT transaction_id, global_position FROM events
           WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
           ORDER BY transaction_id DESC, global_position DESC LIMIT 1`.execute(db);
  const row = result.rows[0];
  return row ? { transactionId: BigInt(row.transaction_id), globalPosition: BigInt(row.global_position) } : { transactionId: 0n, globalPosition: 0n };
}
