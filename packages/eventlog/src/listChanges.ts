import { sql, type Kysely } from "kysely";
import type { ChangeStateName, ChangeSummariesView, Database } from "./schema.js";
import { changeStreamId } from "./streams.js";

export interface ChangeFilter {
  /** sAMAccountName, user principal name or mail, case-insensitive exact match. */
  account?: string;
  state?: ChangeStateName;
  since?: Date;
  until?: Date;
  agentId?: string;
  /** Only changes captured before this global position (paging, newest first). */
  beforeGlobalPosition?: bigint;
}

export type ChangeSummary = ChangeSummariesView;

const POSITION_SLACK_MS = 60_000;

/** Changes newest first, one row each with its current state (the change_summaries view). */
export async function listChanges(db: Kysely<Database>, filter: ChangeFilter, limit: number): Promise<ChangeSummary[]> {
  let query = db.selectFrom("change_summaries").selectAll();
  if (filter.account) {
    const account = filter.account.toLowerCase();
    query = query.where((eb) =>
      eb.or([
        eb(eb.fn("lower", ["account_name"]), "=", account),
        eb(eb.fn("lower", ["user_principal_name"]), "=", account),
        eb(eb.fn("lower", ["mail"]), "=", account),
      ]),
    );
  }
  if (filter.state) query = query.where("state", "=", filter.state);
  // A time range also bounds the positions, found by two descents of events_type_created:
  // alone, the planner may walk the log backwards from its head to a day months ago (12 s at
  // 10 M events). A position and a capture time are taken in the same row insert, so they
  // order alike up to a skew far below the minute of slack.
  if (filter.since) {
    const before = new Date(filter.since.getTime() - POSITION_SLACK_MS);
    query = query
      .where("captured_at", ">=", filter.since)
      .where(
        "global_position",
        ">",
        sql<string>`coalesce((SELECT global_position FROM events WHERE type = 'ChangeCaptured' AND created_at < ${before} ORDER BY created_at DESC LIMIT 1), 0)`,
      );
  }
  if (filter.until) {
    const after = new Date(filter.until.getTime() + POSITION_SLACK_MS);
    query = query
      .where("captured_at", "<", filter.until)
      .where(
        "global_position",
        "<",
        sql<string>`coalesce((SELECT global_position FROM events WHERE type = 'ChangeCaptured' AND created_at >= ${after} ORDER BY created_at LIMIT 1), 9223372036854775807)`,
      );
  }
  if (filter.agentId) query = query.where("agent_id", "=", filter.agentId);
  if (filter.beforeGlobalPosition !== undefined) query = query.where("global_position", "<", filter.beforeGlobalPosition.toString());
  return query.orderBy("global_position", "desc").limit(limit).execute();
}

export async function getChangeSummary(db: Kysely<Database>, changeId: string): Promise<ChangeSummary | undefined> {
  return db.selectFrom("change_summaries").selectAll().where("stream_id", "=", changeStreamId(changeId)).executeTakeFirst();
}
