import { listChanges, openEventLog, type EventLog } from "@pwsync/eventlog";
import { sql } from "kysely";
import { createTestDatabase } from "@pwsync/testkit";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fillHistory } from "./history-fill.js";
import { grafanaOperations, pickSamples, readStatementsOf, recordingLog, serviceOperations, type Recorded, type TimedOperation } from "./history-queries.js";

// The plans behind "history never slows the admin down": on a modestly filled log, after
// ANALYZE and with the planner's settings untouched, every statement the admin, the watchdog,
// a consumer and the Grafana panels run reads through an index or the change_states
// projection, never a whole events / streams / change_states table. The history bench
// measures the times; this guards the shapes that make them independent of the log's size.

const BIG_TABLES = new Set(["events", "streams", "change_states"]);

/** Each inner list: at least one of these indexes appears in the operation's plans. */
const INTENDED: Record<string, string[][]> = {
  // Watchdog alert events by the partial index or by type: either reads only those events.
  getStatus: [["events_watchdog", "events_type_created"], ["events_captured_agent"], ["events_partition_order"]],
  listChangesFirstPage: [["change_states_global_position_key", "events_pkey"]],
  listChangesByAccount: [["events_captured_account", "events_captured_upn", "events_captured_mail"]],
  listChangesByState: [["change_states_state_position", "change_states_state_updated"]],
  listChangesByTime: [["events_type_created", "events_created_brin"]],
  getChange: [["events_stream_type", "events_stream_id_stream_version_key"]],
  watchdogTick: [["events_captured_dc"], ["events_captured_agent"], ["events_watchdog", "events_type_created"]],
  consumerRead: [["events_partition_order", "events_order"]],
};

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  "Index Name"?: string;
  Plans?: PlanNode[];
}

function nodesOf(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodesOf)];
}

let log: EventLog;
let samples: Awaited<ReturnType<typeof pickSamples>>;
const recorded: Recorded[] = [];
let services: { operations: TimedOperation[]; stop(): Promise<void> };
let grafana: TimedOperation[];

async function planOf(operation: TimedOperation): Promise<{ seqScans: string[]; indexes: Set<string> }> {
  const seqScans: string[] = [];
  const indexes = new Set<string>();
  for (const statement of await readStatementsOf(operation, recorded)) {
    const result = await log.pool.query<{ "QUERY PLAN": Array<{ Plan: PlanNode }> }>(
      `EXPLAIN (FORMAT JSON) ${statement.sql}`,
      statement.parameters as unknown[],
    );
    for (const node of nodesOf(result.rows[0]!["QUERY PLAN"][0]!.Plan)) {
      if (node["Node Type"] === "Seq Scan" && BIG_TABLES.has(node["Relation Name"] ?? ""))
        seqScans.push(`${node["Relation Name"]} in: ${statement.sql.slice(0, 120)}`);
      if (node["Index Name"]) indexes.add(node["Index Name"]);
    }
  }
  return { seqScans, indexes };
}

beforeAll(async () => {
  const url = await createTestDatabase("history");
  await (await openEventLog(url)).close();
  const client = new pg.Client(url);
  await client.connect();
  // Enough for the planner to prefer indexes for what they are meant for; the fill ends with ANALYZE.
  await fillHistory(client, { events: 60_000 }).finally(() => client.end());
  log = recordingLog(url, recorded);
  samples = await pickSamples(log);
  services = serviceOperations(log, samples);
  grafana = grafanaOperations(log, samples);
});

afterAll(async () => {
  await services?.stop();
  await log?.close();
});

describe("history at scale: query plans", () => {
  it("ListChanges by time returns exactly what the plain view filter returns, for a day, an hour, an empty range and open ends", async () => {
    const at = (fraction: number) => new Date(samples.from.getTime() + fraction * (samples.to.getTime() - samples.from.getTime()));
    const hour = 3_600_000;
    const ranges: Array<{ since?: Date; until?: Date }> = [
      { since: at(0.5), until: new Date(at(0.5).getTime() + 24 * hour) },
      { since: at(0.25), until: new Date(at(0.25).getTime() + hour) },
      { since: at(0.7), until: new Date(at(0.7).getTime() + 1000) },
      { since: at(0.999) },
      { until: at(0.001) },
    ];
    for (const range of ranges) {
      const got = await listChanges(log.db, range, 51);
      const plain = await sql<{ change_id: string }>`
        SELECT change_id FROM change_summaries
         WHERE captured_at >= ${range.since ?? new Date(0)} AND captured_at < ${range.until ?? new Date(8.64e15)}
         ORDER BY global_position DESC LIMIT 51`.execute(log.db);
      expect(
        got.map((c) => c.change_id),
        JSON.stringify(range),
      ).toEqual(plain.rows.map((r) => r.change_id));
    }
  });

  it("the admin's reads, a watchdog tick and a consumer's read use their intended indexes, never a whole-table scan", async () => {
    const problems: string[] = [];
    expect(services.operations.map((o) => o.name).sort()).toEqual(Object.keys(INTENDED).sort());
    for (const operation of services.operations) {
      const { seqScans, indexes } = await planOf(operation);
      for (const scan of seqScans) problems.push(`${operation.name}: Seq Scan on ${scan}`);
      for (const anyOf of INTENDED[operation.name]!)
        if (!anyOf.some((index) => indexes.has(index)))
          problems.push(`${operation.name}: none of ${anyOf.join(" / ")} used (used: ${[...indexes].join(", ")})`);
    }
    expect(problems).toEqual([]);
  });

  it("every SQL panel of the Grafana dashboards reads through an index, never a whole events / streams / change_states table", async () => {
    expect(grafana.length).toBeGreaterThanOrEqual(10);
    const problems: string[] = [];
    for (const operation of grafana) for (const scan of (await planOf(operation)).seqScans) problems.push(`${operation.name}: Seq Scan on ${scan}`);
    expect(problems).toEqual([]);
  });
});
