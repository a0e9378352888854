import { sql, type Kysely, type Transaction } from "kysely";
import { partitionOf } from "./partition.js";
import type { Database } from "./schema.js";
import type { NewEvent } from "./types.js";

/** Number of events in the stream the appender believes it is appending after. */
export type ExpectedVersion = number | "no_stream" | "any";

export type AppendResult =
  | { success: true; nextVersion: number; globalPositions: bigint[] }
  | { success: false; streamId: string; expectedVersion: ExpectedVersion; actualVersion: number | null };

export const EVENTS_CHANNEL = "pwsync_events";

export interface AppendOptions {
  expectedVersion: ExpectedVersion;
  /** Events with the same partition key are consumed in order by one consumer (default: stream id). */
  partitionKey?: string;
}

/**
 * Appends events to one stream atomically. The expected-version conflict is an expected outcome,
 * returned as `{success:false}` rather than thrown, and leaves the surrounding transaction usable.
 */
export async function appendToStream(
  executor: Kysely<Database> | Transaction<Database>,
  streamId: string,
  events: NewEvent[],
  options: AppendOptions,
): Promise<AppendResult> {
  if (events.length === 0) throw new Error(`appendToStream(${streamId}): no events to append`);
  if (executor.isTransaction) return appendInTransaction(executor as Transaction<Database>, streamId, events, options);
  return executor.transaction().execute((trx) => appendInTransaction(trx, streamId, events, options));
}

async function appendInTransaction(trx: Transaction<Database>, streamId: string, events: NewEvent[], options: AppendOptions): Promise<AppendResult> {
  const count = events.length;
  const { expectedVersion } = options;
  const partitionKey = options.partitionKey ?? streamId;
  const partition = partitionOf(partitionKey);
  // Sent at commit only, so consumers never wake for an event they cannot see yet. Evaluated in
  // the stream row's RETURNING (one round trip less per append), so only when the append goes
  // ahead. Payload "partition:Type,Type" lets consumers wake only for events they handle.
  const notify = sql<string>`pg_notify(${EVENTS_CHANNEL}, ${`${partition}:${[...new Set(events.map((e) => e.type))].join(",")}`})`.as("notified");
  let newVersion: number | undefined;
  if (expectedVersion === "no_stream" || expectedVersion === 0) {
    const inserted = await trx
      .insertInto("streams")
      .values({ stream_id: streamId, version: count })
      .onConflict((oc) => oc.column("stream_id").doNothing())
      .returning(["version", notify])
      .executeTakeFirst();
    newVersion = inserted?.version;
  } else if (expectedVersion === "any") {
    const upserted = await trx
      .insertInto("streams")
      .values({ stream_id: streamId, version: count })
      .onConflict((oc) => oc.column("stream_id").doUpdateSet({ version: sql`streams.version + ${count}` }))
      .returning(["version", notify])
      .executeTakeFirstOrThrow();
    newVersion = upserted.version;
  } else {
    // The row lock taken here serialises concurrent appenders to one stream; the version check
    // makes the loser see a conflict instead of interleaving.
    const updated = await trx
      .updateTable("streams")
      .set({ version: sql`version + ${count}` })
      .where("stream_id", "=", streamId)
      .where("version", "=", expectedVersion)
      .returning(["version", notify])
      .executeTakeFirst();
    newVersion = updated?.version;
  }
  if (newVersion === undefined) {
    const actual = await trx.selectFrom("streams").select("version").where("stream_id", "=", streamId).executeTakeFirst();
    return { success: false, streamId, expectedVersion, actualVersion: actual?.version ?? null };
  }
  const firstVersion = newVersion - count + 1;
  const rows = await trx
    .insertInto("events")
    .values(
      events.map((event, index) => ({
        stream_id: streamId,
        stream_version: firstVersion + index,
        partition,
        partition_key: partitionKey,
        type: event.type,
        data: JSON.stringify(event.data),
        metadata: JSON.stringify(event.metadata ?? {}),
      })),
    )
    .returning("global_position")
    .execute();
  return { success: true, nextVersion: newVersion, globalPositions: rows.map((r) => BigInt(r.global_position)) };
}

export function describeConflict(result: Extract<AppendResult, { success: false }>): string {
  return `Wrong expected version: ${String(result.expectedVersion)} (Stream: ${result.streamId}, Stream Version: ${result.actualVersion ?? "none"})`;
}
