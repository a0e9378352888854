import { appendToStreams, type Database, type NewEvent } from "@pwsync/eventlog";
import { type Kysely, sql, type Transaction } from "kysely";
import { GroupedRequests } from "@pwsync/grouping";

/** A change's terminal outcome and what commits with it. */
export interface Outcome {
  changeId: string;
  streamId: string;
  /** The stream's version the outcome was decided on: one outcome per change. */
  expectedVersion: number;
  events: NewEvent[];
  /** The sealed password is deleted (SecretShredded is among the events). */
  shred: boolean;
  /** The write that got an answer: no longer possibly in flight. */
  answeredAttempt: string | undefined;
  /** The change as the user's newest seen, unless a newer one is recorded. */
  user: { entraUserId: string; changedAt: Date; orderKey: Buffer };
}

class MovedOn extends Error {}

/**
 * Commits outcomes as soon as they are known, several per transaction: one transaction runs at a
 * time and whatever finished meanwhile goes into the next (group commit). An outcome never waits
 * for a slower change (only for the commit in flight), so a kill loses no more than it did with
 * a transaction per outcome: the writes whose outcome was not yet committed, which the next
 * owner repeats with the same password. If a group fails, each of its outcomes is tried alone,
 * so one change that moved on cannot make the others redo their writes.
 */
export class OutcomeCommits {
  private readonly rounds: GroupedRequests<Outcome, void>;

  constructor(db: Kysely<Database>) {
    this.rounds = new GroupedRequests(
      async (outcomes) => {
        await db.transaction().execute((trx) => commitTogether(trx, outcomes));
        return outcomes.map(() => undefined);
      },
      { keyOf: (outcome) => outcome.user.entraUserId, retryAlone: true },
    );
  }

  commit(outcome: Outcome): Promise<void> {
    return this.rounds.ask(outcome);
  }
}

/** One transaction for several changes, at most one per user (the user state is upserted once per row). */
async function commitTogether(trx: Transaction<Database>, outcomes: Outcome[]): Promise<void> {
  const answered = outcomes.flatMap((o) => (o.answeredAttempt ? [o.answeredAttempt] : []));
  if (answered.length > 0) await sql`DELETE FROM graph_write_attempts WHERE attempt_id = ANY(${answered}::uuid[])`.execute(trx);
  const appended = await appendToStreams(
    trx,
    outcomes.map((o) => ({ streamId: o.streamId, events: o.events, expectedVersion: o.expectedVersion })),
  );
  const movedOn = outcomes.filter((_, i) => !appended[i]!.success);
  if (movedOn.length > 0)
    throw new MovedOn(`${movedOn.map((o) => `change ${o.changeId} (version ${o.expectedVersion} expected)`).join(", ")} moved on while being reset`);
  const shredded = outcomes.flatMap((o) => (o.shred ? [o.changeId] : []));
  if (shredded.length > 0) await sql`DELETE FROM sealed_secrets WHERE change_id = ANY(${shredded}::uuid[])`.execute(trx);
  // The newest change seen for a user, whatever its outcome: an older one arriving later must
  // not put an older password in place. bytea compares bytewise, as ordering.ts does; rows from
  // before the key existed fall back to the time they were ordered by then.
  await sql`
    INSERT INTO executor_user_state (entra_user_id, change_id, changed_at, order_key)
    SELECT * FROM unnest(${outcomes.map((o) => o.user.entraUserId)}::text[], ${outcomes.map((o) => o.changeId)}::uuid[],
                         ${outcomes.map((o) => o.user.changedAt.toISOString())}::timestamptz[], ${outcomes.map((o) => o.user.orderKey)}::bytea[])
    ON CONFLICT (entra_user_id) DO UPDATE
       SET change_id = excluded.change_id, changed_at = excluded.changed_at, order_key = excluded.order_key
     WHERE executor_user_state.order_key <= excluded.order_key
        OR (executor_user_state.order_key IS NULL AND executor_user_state.changed_at <= excluded.changed_at)`.execute(trx);
}
