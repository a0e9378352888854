import { fnv1a, type Database } from "@pwsync/eventlog";
import { sql, type Kysely } from "kysely";
import { GroupedRequests } from "@pwsync/grouping";
import { grantSlots } from "./slot-grant.js";

/** The client-side Graph write budget the reset-executor spends before each PATCH. */
export interface WriteBudget {
  /** Waits for a slot (recording the write); resolves with the time waited in ms. */
  acquire(sleep: (ms: number) => Promise<unknown>): Promise<number>;
  /** Graph throttles per app, not per user: a 429's Retry-After pauses every write. */
  pauseFor(ms: number): Promise<void>;
}

const BUDGET_LOCK = fnv1a("pwsync-graph-write-budget");

/**
 * The sliding window as shared state in Postgres: every replica records its writes in one
 * table and counts everyone's, under one transaction-scoped advisory lock, so restarts and
 * scale-out never exceed the budget (an in-memory window forgot the writes just made, and each
 * new replica started with a full one). Postgres's clock is the only clock used.
 */
export class SharedWriteBudget implements WriteBudget {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly limit: number,
    private readonly windowMs: number,
    /** A shorter window that spreads the budget's writes out (slot-grant.ts says why); none: bursts allowed. */
    private readonly pace?: { limit: number; windowMs: number },
  ) {}

  private readonly rounds = new GroupedRequests<void, number>((asks) => this.acquireSlots(asks.length));

  /**
   * Milliseconds to wait before the next write may go; 0 means now (and records the write).
   * Writers asking at once share one transaction: one runs at a time and whoever asked
   * meanwhile goes into the next (six statements per write were one per group).
   */
  tryAcquire(): Promise<number> {
    return this.rounds.ask(undefined);
  }

  /** Up to `wanted` slots, in order: 0 for each one granted, then the wait for the rest. */
  private async acquireSlots(wanted: number): Promise<number[]> {
    const window = this.windowMs / 1000;
    return this.db.transaction().execute(async (trx) => {
      await sql`SELECT pg_advisory_xact_lock(${BUDGET_LOCK})`.execute(trx);
      await sql`DELETE FROM graph_write_budget WHERE at <= clock_timestamp() - make_interval(secs => ${window})`.execute(trx);
      const pace = this.pace ? this.pace.windowMs / 1000 : window;
      const state = await sql<{
        paused_ms: number | null;
        used: string;
        free_in_ms: number | null;
        pace_used: string;
        pace_free_in_ms: number | null;
      }>`
        SELECT (SELECT ceil(extract(epoch FROM until - clock_timestamp()) * 1000)::int FROM graph_write_pause WHERE until > clock_timestamp()) AS paused_ms,
               count(*) AS used,
               ceil(extract(epoch FROM min(at) + make_interval(secs => ${window}) - clock_timestamp()) * 1000)::int AS free_in_ms,
               count(*) FILTER (WHERE at > clock_timestamp() - make_interval(secs => ${pace})) AS pace_used,
               ceil(extract(epoch FROM min(at) FILTER (WHERE at > clock_timestamp() - make_interval(secs => ${pace})) + make_interval(secs => ${pace}) - clock_timestamp()) * 1000)::int AS pace_free_in_ms
          FROM graph_write_budget WHERE at > clock_timestamp() - make_interval(secs => ${window})`.execute(trx);
      const row = state.rows[0]!;
      const waits = grantSlots({
        wanted,
        pausedMs: row.paused_ms,
        window: { limit: this.limit, used: Number(row.used), oldestLeavesInMs: row.free_in_ms, lengthMs: this.windowMs },
        pace: this.pace && { limit: this.pace.limit, used: Number(row.pace_used), oldestLeavesInMs: row.pace_free_in_ms, lengthMs: this.pace.windowMs },
      });
      const granted = waits.filter((w) => w === 0).length;
      if (granted > 0) await sql`INSERT INTO graph_write_budget (at) SELECT clock_timestamp() FROM generate_series(1, ${granted}::int)`.execute(trx);
      return waits;
    });
  }

  async acquire(sleep: (ms: number) => Promise<unknown>): Promise<number> {
    const started = Date.now();
    for (;;) {
      const wait = await this.tryAcquire();
      if (wait === 0) return Date.now() - started;
      await sleep(wait);
    }
  }

  async pauseFor(ms: number): Promise<void> {
    await sql`
      INSERT INTO graph_write_pause (id, until) VALUES (1, clock_timestamp() + make_interval(secs => ${ms / 1000}))
      ON CONFLICT (id) DO UPDATE SET until = greatest(graph_write_pause.until, excluded.until)`.execute(this.db);
  }
}
