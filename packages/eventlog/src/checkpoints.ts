import { sql, type Kysely, type Transaction } from "kysely";
import { PARTITION_COUNT } from "./partition.js";
import { START, type Position } from "./readPartitionBatch.js";
import { PREPARED } from "./preparedStatements.js";
import type { Database } from "./schema.js";

export async function readCheckpoint(db: Kysely<Database>, group: string, partition: number): Promise<Position> {
  await db
    .insertInto("consumer_checkpoints")
    .values({ group_name: group, partition, transaction_id: "0", global_position: "0" })
    .onConflict((oc) => oc.columns(["group_name", "partition"]).doNothing())
    .execute();
  const row = await db
    .selectFrom("consumer_checkpoints")
    .select(["transaction_id", "global_position"])
    .where("group_name", "=", group)
    .where("partition", "=", partition)
    .executeTakeFirst();
  return row ? { transactionId: BigInt(row.transaction_id), globalPosition: BigInt(row.global_position) } : START;
}

export type StoreCheckpointResult = "ok" | "mismatch";

/**
 * Compare-and-set: moves the checkpoint from `from` to `to` only if it is still at `from`. A
 * mismatch means another member processed this partition meanwhile (ownership moved); the
 * caller must roll back its work, which is what makes processing exactly-once in the database.
 */
export async function storeCheckpoint(
  executor: Kysely<Database> | Transaction<Database>,
  group: string,
  partition: number,
  from: Position,
  to: Position,
): Promise<StoreCheckpointResult> {
  const result = await sql`${sql.raw(PREPARED)}
    UPDATE consumer_checkpoints
       SET transaction_id = ${to.transactionId.toString()}::xid8,
           global_position = ${to.globalPosition.toString()},
           updated_at = now()
     WHERE group_name = ${group} AND partition = ${partition}
       AND transaction_id = ${from.transactionId.toString()}::xid8
       AND global_position = ${from.globalPosition.toString()}`.execute(executor);
  return result.numAffectedRows === 1n ? "ok" : "mismatch";
}

/**
 * Events committed and visible but not yet processed by the group, across all partitions: one
 * range count per partition on events_partition_order, so it costs the lag, not the log.
 */
export async function consumerLag(db: Kysely<Database>, group: string): Promise<number> {
  const result = await sql<{ lag: string }>`
    SELECT coalesce(sum(l.n), 0) AS lag
      FROM generate_series(0, ${PARTITION_COUNT - 1}) AS p(partition)
      LEFT JOIN consumer_checkpoints c ON c.group_name = ${group} AND c.partition = p.partition
     CROSS JOIN LATERAL (
       SELECT count(*) AS n FROM events e
        WHERE e.partition = p.partition
          AND (e.transaction_id, e.global_position) > (coalesce(c.transaction_id, '0'::xid8), coalesce(c.global_position, 0))
     ) l`.execute(db);
  return Number(result.rows[0]?.lag ?? 0);
}
