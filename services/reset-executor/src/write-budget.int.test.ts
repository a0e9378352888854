import { openEventLog, type EventLog } from "@pwsync/eventlog";
import { createTestDatabase } from "@pwsync/testkit";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SharedWriteBudget } from "./write-budget.js";

// The Graph write budget shared through Postgres by every reset-executor replica, including
// one that just restarted (a fresh process with nothing in memory).

let log: EventLog;
beforeAll(async () => {
  log = await openEventLog(await createTestDatabase("budget"));
});
afterAll(async () => {
  await log?.close();
});

const WINDOW_MS = 60_000;

describe("SharedWriteBudget", () => {
  it("replicas and a restarted replica draw from one window: the limit holds across all of them", async () => {
    await sql`TRUNCATE graph_write_budget, graph_write_pause`.execute(log.db);
    const replicaA = new SharedWriteBudget(log.db, 5, WINDOW_MS);
    const replicaB = new SharedWriteBudget(log.db, 5, WINDOW_MS);
    for (let i = 0; i < 3; i++) expect(await replicaA.tryAcquire()).toBe(0);
    for (let i = 0; i < 2; i++) expect(await replicaB.tryAcquire()).toBe(0);
    // The window is full: everyone waits, also a replica that starts now.
    const restarted = new SharedWriteBudget(log.db, 5, WINDOW_MS);
    for (const budget of [replicaA, replicaB, restarted]) {
      const wait = await budget.tryAcquire();
      expect(wait).toBeGreaterThan(0);
      expect(wait).toBeLessThanOrEqual(WINDOW_MS);
    }
    const recorded = await sql<{ n: string }>`SELECT count(*) AS n FROM graph_write_budget`.execute(log.db);
    expect(Number(recorded.rows[0]?.n)).toBe(5);
  });

  it("concurrent acquisitions never pass the limit together", async () => {
    await sql`TRUNCATE graph_write_budget, graph_write_pause`.execute(log.db);
    const replicas = Array.from({ length: 4 }, () => new SharedWriteBudget(log.db, 7, WINDOW_MS));
    const waits = await Promise.all(Array.from({ length: 20 }, (_, i) => replicas[i % 4]!.tryAcquire()));
    expect(waits.filter((w) => w === 0)).toHaveLength(7);
  });

  it("writers of one replica asking at once share a transaction and still get no more than the limit; the rest wait for a slot", async () => {
    await sql`TRUNCATE graph_write_budget, graph_write_pause`.execute(log.db);
    const budget = new SharedWriteBudget(log.db, 3, WINDOW_MS);
    const waits = await Promise.all(Array.from({ length: 10 }, () => budget.tryAcquire()));
    expect(waits.filter((w) => w === 0)).toHaveLength(3);
    // Nothing older was in the window: the first slot frees when the writes just granted leave it.
    for (const wait of waits.filter((w) => w > 0)) expect(wait).toBeGreaterThan(WINDOW_MS - 10_000);
    for (const wait of waits) expect(wait).toBeLessThanOrEqual(WINDOW_MS);
    const recorded = await sql<{ n: string }>`SELECT count(*) AS n FROM graph_write_budget`.execute(log.db);
    expect(Number(recorded.rows[0]?.n)).toBe(3);
  });

  it("a slot frees when the oldest write leaves the window", async () => {
    await sql`TRUNCATE graph_write_budget, graph_write_pause`.execute(log.db);
    const budget = new SharedWriteBudget(log.db, 2, WINDOW_MS);
    // Two writes made long ago (by a replica that has since died) and one now.
    await sql`INSERT INTO graph_write_budget (at) VALUES (clock_timestamp() - interval '61 seconds'), (clock_timestamp() - interval '30 seconds')`.execute(
      log.db,
    );
    expect(await budget.tryAcquire()).toBe(0);
    const wait = await budget.tryAcquire();
    expect(wait).toBeGreaterThan(25_000);
    expect(wait).toBeLessThanOrEqual(30_000);
  });

  it("a Retry-After pause set by one replica holds every replica's writes", async () => {
    await sql`TRUNCATE graph_write_budget, graph_write_pause`.execute(log.db);
    const throttled = new SharedWriteBudget(log.db, 100, WINDOW_MS);
    const other = new SharedWriteBudget(log.db, 100, WINDOW_MS);
    await throttled.pauseFor(20_000);
    await throttled.pauseFor(5_000); // a shorter pause does not shorten the longer one
    const wait = await other.tryAcquire();
    expect(wait).toBeGreaterThan(10_000);
    expect(wait).toBeLessThanOrEqual(20_000);
  });

  it("paced, a whole window asked for at once is spread out: no more than the pace's share within its window, across replicas", async () => {
    await sql`TRUNCATE graph_write_budget, graph_write_pause`.execute(log.db);
    const pace = { limit: 3, windowMs: 6_000 };
    const replicas = Array.from({ length: 3 }, () => new SharedWriteBudget(log.db, 30, WINDOW_MS, pace));
    const waits = await Promise.all(Array.from({ length: 30 }, (_, i) => replicas[i % 3]!.tryAcquire()));
    expect(waits.filter((w) => w === 0)).toHaveLength(3);
    // The others wait for the pace window, not the whole budget window.
    for (const wait of waits.filter((w) => w > 0)) expect(wait).toBeLessThanOrEqual(pace.windowMs);
    // Writes older than the pace window leave room in it again, while the budget window still counts them.
    await sql`UPDATE graph_write_budget SET at = at - interval '7 seconds'`.execute(log.db);
    const next = await Promise.all(Array.from({ length: 5 }, () => replicas[0]!.tryAcquire()));
    expect(next.filter((w) => w === 0)).toHaveLength(3);
    const recorded = await sql<{ n: string }>`SELECT count(*) AS n FROM graph_write_budget`.execute(log.db);
    expect(Number(recorded.rows[0]?.n)).toBe(6);
  });
});
