import { sql, type Kysely } from "kysely";
import { PREPARED } from "./preparedStatements.js";
import type { Database } from "./schema.js";
import { toStoredEvent, type EventRow, type StoredEvent } from "./types.js";

export interface Position {
  transactionId: bigint;
  globalPosition: bigint;
}

export const START: Position = { transactionId: 0n, globalPosition: 0n };

export interface PartitionBatch {
  /** Events of the wanted types, in commit order. */
  events: StoredEvent[];
  /** The last position scanned (wanted or not), so the checkpoint can move past the rest. */
  scannedTo: Position | null;
}

/**
 * Reads the next events of one partition after `after`, in (transaction id, position) order,
 * and only from transactions older than every transaction still running. A bare
 * `global_position > checkpoint` would skip an event whose transaction took a lower position
 * but committed later; this rule waits for it instead (see STYLE.md, "Gap-free ordered reads").
 * Of the `limit` events scanned only the wanted ones come back, plus the last one scanned as a
 * bare position: every consumer group scans every event of its partitions, and most are not
 * its own.
 */
export async function readPartitionBatch(
  db: Kysely<Database>,
  partition: number,
  after: Position,
  types: readonly string[],
  limit: number,
): Promise<PartitionBatch> {
  const result = await sql<EventRow & { wanted: boolean }>`${sql.raw(PREPARED)}
    SELECT global_position, transaction_id, stream_id, stream_version, partition, partition_key, type,
           CASE WHEN wanted THEN data END AS data,
           CASE WHEN wanted THEN metadata END AS metadata,
           created_at, wanted
      FROM (SELECT scanned.*, type = ANY(${types}::text[]) AS wanted,
                   row_number() OVER (ORDER BY transaction_id DESC, global_position DESC) AS from_end
              FROM (SELECT * FROM events
                     WHERE partition = ${partition}
                       AND (transaction_id, global_position) > (${after.transactionId.toString()}::xid8, ${after.globalPosition.toString()}::bigint)
                       AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
                     ORDER BY transaction_id, global_position
                     LIMIT ${limit}) scanned) numbered
     WHERE wanted OR from_end = 1
     ORDER BY transaction_id, global_position`.execute(db);
  const rows = result.rows;
  const last = rows.at(-1);
  return {
    events: rows.filter((row) => row.wanted).map(toStoredEvent),
    scannedTo: last ? { transactionId: BigInt(last.transaction_id), globalPosition: BigInt(last.global_position) } : null,
  };
}
