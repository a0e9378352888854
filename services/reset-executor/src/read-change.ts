import { type Database, type EventRow, type StoredEvent, toStoredEvent } from "@pwsync/eventlog";
import { type Kysely, sql } from "kysely";
import type { NewestOfUser } from "./decider.js";

/** Everything the executor needs to start a change, from one snapshot. */
export interface ChangeReading {
  stream: StoredEvent[];
  /** The user's newest finished change (executor_user_state). */
  newestOfUser: NewestOfUser | undefined;
  sealed: { keyId: string; envelope: Buffer } | undefined;
}

type Row = EventRow & {
  key_id: string | null;
  envelope: Buffer | null;
  newest_change_id: string | null;
  newest_changed_at: Date | null;
  newest_order_key: Buffer | null;
};

/**
 * The change's stream, the user's newest finished change and the sealed password in one
 * statement (three reads cost three round trips and three snapshots). The two single rows ride
 * on the stream's first event only.
 */
export async function readChange(db: Kysely<Database>, streamId: string, changeId: string, entraUserId: string): Promise<ChangeReading> {
  const result = await sql<Row>`
    SELECT e.global_position, e.transaction_id, e.stream_id, e.stream_version, e.partition, e.partition_key, e.type, e.data, e.metadata, e.created_at,
           s.key_id, s.envelope, u.change_id AS newest_change_id, u.changed_at AS newest_changed_at, u.order_key AS newest_order_key
      FROM events e
      LEFT JOIN sealed_secrets s ON e.stream_version = 1 AND s.change_id = ${changeId}
      LEFT JOIN executor_user_state u ON e.stream_version = 1 AND u.entra_user_id = ${entraUserId}
     WHERE e.stream_id = ${streamId}
     ORDER BY e.stream_version`.execute(db);
  const first = result.rows[0];
  return {
    stream: result.rows.map(toStoredEvent),
    newestOfUser: first?.newest_change_id
      ? { changeId: first.newest_change_id, orderKey: first.newest_order_key, changedAt: first.newest_changed_at! }
      : undefined,
    sealed: first?.key_id ? { keyId: first.key_id, envelope: first.envelope! } : undefined,
  };
}
