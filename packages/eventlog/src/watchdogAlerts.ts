import { sql, type Kysely } from "kysely";
import type { Database } from "./schema.js";

export const WATCHDOG_STREAM_PREFIX = "watchdog-";

export interface WatchdogStreamState {
  streamId: string;
  /** Stream version, for the next append's expected version. */
  version: number;
  raised: boolean;
  data: unknown;
  changedAt: Date;
}

/**
 * The latest WatchdogAlertRaised / WatchdogAlertCleared of every watchdog stream, read from the
 * events_watchdog partial index (only alert events, however long the rest of the log).
 */
export async function watchdogStreamStates(db: Kysely<Database>): Promise<WatchdogStreamState[]> {
  const result = await sql<{ stream_id: string; version: number; type: string; data: unknown; created_at: Date }>`
    SELECT DISTINCT ON (e.stream_id) e.stream_id, s.version, e.type, e.data, e.created_at
      FROM events e JOIN streams s ON s.stream_id = e.stream_id
     WHERE e.type IN ('WatchdogAlertRaised', 'WatchdogAlertCleared') AND e.stream_id LIKE ${`${WATCHDOG_STREAM_PREFIX}%`}
     ORDER BY e.stream_id, e.stream_version DESC`.execute(db);
  return result.rows.map((r) => ({
    streamId: r.stream_id,
    version: r.version,
    raised: r.type === "WatchdogAlertRaised",
    data: r.data,
    changedAt: r.created_at,
  }));
}
