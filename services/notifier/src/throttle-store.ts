import { sql, type Kysely, type Transaction } from "kysely";
import type { Database } from "@pwsync/eventlog";
import type { ThrottleWindow } from "./decide.js";

type Executor = Kysely<Database> | Transaction<Database>;

export async function loadThrottleWindows(db: Executor, recipients: readonly string[]): Promise<Map<string, ThrottleWindow>> {
  if (recipients.length === 0) return new Map();
  const rows = await db.selectFrom("notifier_throttle").selectAll().where("recipient", "in", [...recipients]).execute();
  return new Map(rows.map((r) => [r.recipient, { windowStartedAt: r.window_started_at, sentInWindow: r.sent_in_window }]));
}

/**
 * Counts one sent alert. The window rule is the one in decide.ts's windowExpired, applied in SQL
 * so two replicas counting for the same recipient at once both land (the row lock orders them).
 */
export async function countSent(trx: Transaction<Database>, recipient: string, now: Date, windowMinutes: number): Promise<void> {
  const expired = sql<boolean>`notifier_throttle.window_started_at + make_interval(secs => ${windowMinutes * 60}) <= ${now}`;
  await trx
    .insertInto("notifier_throttle")
    .values({ recipient, window_started_at: now, sent_in_window: 1 })
    .onConflict((oc) =>
      oc.column("recipient").doUpdateSet({
        window_started_at: sql`CASE WHEN ${expired} THEN ${now}::timestamptz ELSE notifier_throttle.window_started_at END`,
        sent_in_window: sql`CASE WHEN ${expired} THEN 1 ELSE notifier_throttle.sent_in_window + 1 END`,
      }),
    )
    .execute();
}
