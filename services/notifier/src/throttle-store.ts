import { sql, type Kysely, type Transaction } from "kysely";
import type { Database } from "@pwsync/eventlog";
import type { ThrottleWindow } from "./decide.js";

type Executor = Kysely<Database> | Transaction<Database>;

export async function loadThrottleWindows(db: Executor, recipients: readonly string[]): Promise<Map<string, ThrottleWindow>> {
  if (recipients.length === 0) return new Map();
  const rows = await db
    .selectFrom("notifier_throttle")
    .selectAll()
    .where("recipient", "in", [...recipients])
    .execute();
  return new Map(rows.map((r) => [r.recipient, { windowStartedAt: r.window_started_at, sentInWindow: r.sent_in_window }]));
}

/**
 * Takes one slot of the recipient's window atomically, before the email is sent, so workers of
 * different partitions or replicas alerting the same recipient at once cannot both pass a full
 * window. Returns undefined when reserved, or when the window frees up again.
 */
export async function reserveSlot(db: Executor, recipient: string, now: Date, windowMinutes: number, maxPerWindow: number): Promise<Date | undefined> {
  const expired = sql<boolean>`notifier_throttle.window_started_at + make_interval(secs => ${windowMinutes * 60}) <= ${now}`;
  const reserved = await db
    .insertInto("notifier_throttle")
    .values({ recipient, window_started_at: now, sent_in_window: 1 })
    .onConflict((oc) =>
      oc
        .column("recipient")
        .doUpdateSet({
          window_started_at: sql`CASE WHEN ${expired} THEN ${now}::timestamptz ELSE notifier_throttle.window_started_at END`,
          sent_in_window: sql`CASE WHEN ${expired} THEN 1 ELSE notifier_throttle.sent_in_window + 1 END`,
        })
        .where(sql<boolean>`${expired} OR notifier_throttle.sent_in_window < ${maxPerWindow}`),
    )
    .returning("sent_in_window")
    .executeTakeFirst();
  if (reserved) return undefined;
  const row = await db.selectFrom("notifier_throttle").select("window_started_at").where("recipient", "=", recipient).executeTakeFirst();
  return new Date((row?.window_started_at ?? now).getTime() + windowMinutes * 60_000);
}

/** Gives a reserved slot back when the relay could not take the message (it will be retried). */
export async function releaseSlot(db: Executor, recipient: string): Promise<void> {
  await db.updateTable("notifier_throttle").set({ sent_in_window: sql`greatest(sent_in_window - 1, 0)` }).where("recipient", "=", recipient).execute();
}
