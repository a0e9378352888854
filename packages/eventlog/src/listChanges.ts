import type { Kysely } from "kysely";
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
  if (filter.since) query = query.where("captured_at", ">=", filter.since);
  if (filter.until) query = query.where("captured_at", "<", filter.until);
  if (filter.agentId) query = query.where("agent_id", "=", filter.agentId);
  if (filter.beforeGlobalPosition !== undefined) query = query.where("global_position", "<", filter.beforeGlobalPosition.toString());
  return query.orderBy("global_position", "desc").limit(limit).execute();
}

export async function getChangeSummary(db: Kysely<Database>, changeId: string): Promise<ChangeSummary | undefined> {
  return db.selectFrom("change_summaries").selectAll().where("stream_id", "=", changeStreamId(changeId)).executeTakeFirst();
}
