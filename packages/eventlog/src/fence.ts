import { sql, type Kysely, type Transaction } from "kysely";
import type { Database } from "./schema.js";

/** Proof of ownership of a consumer group's partition, valid until another member takes it. */
export interface Fence {
  group: string;
  partition: number;
  token: bigint;
}

export class FencedOut extends Error {
  constructor(fence: Fence) {
    super(`partition ${fence.partition} of ${fence.group} has a newer owner than fence ${fence.token}`);
  }
}

/**
 * Raises the partition's fencing token; called by the member that just locked the partition,
 * before any of its workers runs.
 */
export async function raiseFence(
  query: (text: string, values: unknown[]) => Promise<{ rows: Array<{ fence: string }> }>,
  group: string,
  partition: number,
): Promise<bigint> {
  const result = await query(
    `INSERT INTO consumer_checkpoints (group_name, partition, transaction_id, global_position, fence) VALUES ($1, $2, '0', '0', 1)
     ON CONFLICT (group_name, partition) DO UPDATE SET fence = consumer_checkpoints.fence + 1
     RETURNING fence`,
    [group, partition],
  );
  return BigInt(result.rows[0]!.fence);
}

/**
 * Runs `work` in a transaction that holds the fence: it throws FencedOut unless `fence` is still
 * the partition's newest token, and a new owner's raiseFence waits for this transaction (the row
 * is share-locked), so whatever `work` records is visible to the new owner's first look.
 */
export async function withFence<T>(db: Kysely<Database>, fence: Fence, work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    const row = await sql<{ fence: string }>`
      SELECT fence FROM consumer_checkpoints WHERE group_name = ${fence.group} AND partition = ${fence.partition} FOR SHARE`.execute(trx);
    if (row.rows[0]?.fence !== String(fence.token)) throw new FencedOut(fence);
    return work(trx);
  });
}
