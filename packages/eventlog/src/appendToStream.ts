import { sql, type Kysely, type Transaction } from "kysely";
import { partitionOf } from "./partition.js";
import { PREPARED } from "./preparedStatements.js";
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

/** One stream's part of a multi-stream append. */
export interface StreamAppend extends AppendOptions {
  streamId: string;
  events: NewEvent[];
}

type Executor = Kysely<Database> | Transaction<Database>;

/**
 * Appends events to one stream atomically. The expected-version conflict is an expected outcome,
 * returned as `{success:false}` rather than thrown, and leaves the surrounding transaction usable.
 */
export async function appendToStream(executor: Executor, streamId: string, events: NewEvent[], options: AppendOptions): Promise<AppendResult> {
  const [result] = await appendToStreams(executor, [{ streamId, events, ...options }]);
  return result!;
}

/** How the statement moves a stream's version: create it, bump it from an expected value, or either. */
type VersionRule = "create" | "expected" | "any";

export interface AppendRows {
  /** One per stream: how its version moves and by how many events. */
  streams: Array<{ stream_id: string; rule: VersionRule; expected: number; count: number }>;
  /** One per event, in the order they are to get their global positions. */
  events: Array<{ stream_id: string; ord: number; seq: number; partition: number; partition_key: string; type: string; data: unknown; metadata: unknown }>;
}

/** The statement's input for a multi-stream append (each stream at most once), validated: none empty. */
export function appendRows(appends: readonly StreamAppend[]): AppendRows {
  const rows: AppendRows = { streams: [], events: [] };
  for (const append of appends) {
    const { streamId, events, expectedVersion } = append;
    if (events.length === 0) throw new Error(`appendToStream(${streamId}): no events to append`);
    const partitionKey = append.partitionKey ?? streamId;
    const partition = partitionOf(partitionKey);
    const rule: VersionRule = expectedVersion === "no_stream" || expectedVersion === 0 ? "create" : expectedVersion === "any" ? "any" : "expected";
    rows.streams.push({ stream_id: streamId, rule, expected: typeof expectedVersion === "number" ? expectedVersion : 0, count: events.length });
    events.forEach((event, seq) =>
      rows.events.push({
        stream_id: streamId,
        ord: rows.events.length,
        seq,
        partition,
        partition_key: partitionKey,
        type: event.type,
        data: event.data,
        metadata: event.metadata ?? {},
      }),
    );
  }
  return rows;
}

/**
 * Splits appends into rounds in which each stream appears once: a stream's second append needs
 * the outcome of its first, so it goes in the next round, as if the calls had been made one
 * after the other. Each entry keeps its index in `appends`.
 */
export function appendRounds(appends: readonly StreamAppend[]): Array<Array<{ index: number; append: StreamAppend }>> {
  const rounds: Array<Array<{ index: number; append: StreamAppend }>> = [];
  const seen = new Map<string, number>();
  appends.forEach((append, index) => {
    const round = seen.get(append.streamId) ?? 0;
    seen.set(append.streamId, round + 1);
    (rounds[round] ??= []).push({ index, append });
  });
  return rounds;
}

/**
 * Appends to several streams in one statement (one round trip, no transaction needed: the
 * statement is atomic), each with its own expected version; the results come in the order of
 * `appends`. A stream named more than once takes one more statement per repetition (see
 * appendRounds). A stream whose expected version does not hold gets `{success:false}` and nothing
 * appended, while the others go ahead. Each event NOTIFYs `partition:Type` (sent at commit only,
 * so consumers never wake for an event they cannot see yet; identical payloads of one
 * transaction are sent once).
 */
export async function appendToStreams(executor: Executor, appends: readonly StreamAppend[]): Promise<AppendResult[]> {
  const results: AppendResult[] = [];
  for (const round of appendRounds(appends)) {
    const outcomes = await appendOnce(
      executor,
      round.map((entry) => entry.append),
    );
    round.forEach((entry, i) => (results[entry.index] = outcomes[i]!));
  }
  return results;
}

async function appendOnce(executor: Executor, appends: readonly StreamAppend[]): Promise<AppendResult[]> {
  const rows = appendRows(appends);
  // Versions are decided in the streams table (its row lock serialises concurrent appenders to
  // one stream, and the version check makes the loser see a conflict instead of interleaving);
  // the events take their versions from there. Data-modifying CTEs see one snapshot, so the
  // three version rules touch disjoint rows and the events join what they returned.
  const result = await sql<{ stream_id: string; version: number; positions: string[] }>`${sql.raw(PREPARED)}
    WITH input AS (
      SELECT * FROM json_to_recordset(${JSON.stringify(rows.streams)}::json) AS i(stream_id text, rule text, expected int, count int)
    ), created AS (
      INSERT INTO streams (stream_id, version)
      SELECT stream_id, count FROM input WHERE rule = 'create' ORDER BY stream_id
      ON CONFLICT (stream_id) DO NOTHING
      RETURNING stream_id, version
    ), upserted AS (
      INSERT INTO streams (stream_id, version)
      SELECT stream_id, count FROM input WHERE rule = 'any' ORDER BY stream_id
      ON CONFLICT (stream_id) DO UPDATE SET version = streams.version + excluded.version
      RETURNING stream_id, version
    ), bumped AS (
      UPDATE streams SET version = streams.version + input.count
        FROM input
       WHERE input.rule = 'expected' AND streams.stream_id = input.stream_id AND streams.version = input.expected
      RETURNING streams.stream_id, streams.version, input.count
    ), moved AS (
      SELECT stream_id, version, input.count FROM created JOIN input USING (stream_id)
      UNION ALL SELECT stream_id, version, input.count FROM upserted JOIN input USING (stream_id)
      UNION ALL SELECT stream_id, version, count FROM bumped
    ), inserted AS (
      INSERT INTO events (stream_id, stream_version, partition, partition_key, type, data, metadata)
      SELECT e.stream_id, moved.version - moved.count + 1 + e.seq, e.partition, e.partition_key, e.type, e.data, e.metadata
        FROM json_to_recordset(${JSON.stringify(rows.events)}::json)
             AS e(stream_id text, ord int, seq int, partition int2, partition_key text, type text, data jsonb, metadata jsonb)
        JOIN moved USING (stream_id)
       ORDER BY e.ord
      RETURNING stream_id, stream_version, global_position, pg_notify(${EVENTS_CHANNEL}, partition || ':' || type)
    )
    SELECT moved.stream_id, moved.version, array_agg(inserted.global_position ORDER BY inserted.stream_version) AS positions
      FROM moved JOIN inserted USING (stream_id)
     GROUP BY moved.stream_id, moved.version`.execute(executor);
  const appended = new Map(result.rows.map((row) => [row.stream_id, row]));
  const failed = appends.filter((a) => !appended.has(a.streamId)).map((a) => a.streamId);
  // Read after the statement, so a stream created concurrently (the reason for a conflict) shows.
  const actual = failed.length === 0 ? new Map<string, number>() : await currentVersions(executor, failed);
  return appends.map((append): AppendResult => {
    const row = appended.get(append.streamId);
    if (!row) return { success: false, streamId: append.streamId, expectedVersion: append.expectedVersion, actualVersion: actual.get(append.streamId) ?? null };
    return { success: true, nextVersion: row.version, globalPositions: row.positions.map((p) => BigInt(p)) };
  });
}

async function currentVersions(executor: Executor, streamIds: string[]): Promise<Map<string, number>> {
  const rows = await executor.selectFrom("streams").select(["stream_id", "version"]).where("stream_id", "in", streamIds).execute();
  return new Map(rows.map((r) => [r.stream_id, r.version]));
}

export function describeConflict(result: Extract<AppendResult, { success: false }>): string {
  return `Wrong expected version: ${String(result.expectedVersion)} (Stream: ${result.streamId}, Stream Version: ${result.actualVersion ?? "none"})`;
}
