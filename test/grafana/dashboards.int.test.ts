import { openEventLog, type EventLog } from "@pwsync/eventlog";
import { createTestDatabase } from "@pwsync/testkit";
import { sql } from "kysely";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as seed from "../../services/admin/src/test-support/seed.js";

// Every provisioned dashboard: the JSON parses, every datasource it names is provisioned with
// the same type, and every SQL query runs against the migrated schema with realistic data and
// returns the columns its panel uses.

const deploy = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../deploy/grafana");
const dashboardFiles = readdirSync(path.join(deploy, "dashboards")).filter((f) => f.endsWith(".json"));
const provisioned = (
  parseYaml(readFileSync(path.join(deploy, "provisioning/datasources/pwsync.yaml"), "utf8")) as { datasources: Array<{ uid: string; type: string }> }
).datasources;

interface Target {
  refId: string;
  datasource?: { uid: string; type: string };
  rawSql?: string;
  format?: string;
}
interface Panel {
  title: string;
  type: string;
  datasource?: { uid: string; type: string };
  targets?: Target[];
  options?: { xField?: string };
  fieldConfig?: { overrides?: Array<{ matcher: { id: string; options: string } }> };
}
const dashboards = dashboardFiles.map((file) => ({
  file,
  json: JSON.parse(readFileSync(path.join(deploy, "dashboards", file), "utf8")) as { uid: string; panels: Panel[] },
}));

let log: EventLog;
let change: seed.SeededChange;
const from = new Date(Date.now() - 24 * 3_600_000).toISOString();
const to = new Date(Date.now() + 3_600_000).toISOString();

/** What Grafana does with the macros and variables before the query reaches Postgres. */
function expand(rawSql: string): string {
  const expanded = rawSql
    .replace(/\$__timeFilter\(([^)]+)\)/g, (_, col: string) => `${col} BETWEEN '${from}' AND '${to}'`)
    .replace(
      /\$__timeGroupAlias\(([^,]+),\s*'(\d+)m'\)/g,
      (_, col: string, minutes: string) => `to_timestamp(floor(extract(epoch FROM ${col}) / ${Number(minutes) * 60}) * ${Number(minutes) * 60}) AS "time"`,
    )
    .replaceAll("${account}", "alice")
    .replaceAll("${change_id}", change.changeId);
  expect(expanded, "a macro or variable the test does not know").not.toMatch(/\$\{?_*\w/);
  return expanded;
}

function usedColumns(panel: Panel, target: Target): string[] {
  const names = (panel.fieldConfig?.overrides ?? []).filter((o) => o.matcher.id === "byName").map((o) => o.matcher.options);
  if (panel.options?.xField) names.push(panel.options.xField);
  if (target.format === "time_series") names.push("time");
  return [...new Set(names)];
}

beforeAll(async () => {
  log = await openEventLog(await createTestDatabase("dashboards"));
  change = await seed.captured(log, "alice");
  await seed.passwordSet(log, change);
  await seed.resolutionFailed(log, await seed.captured(log, "bob", { agentId: "dc02-agent", dc: "dc02.corp.example" }));
  await seed.resetFailedShredded(log, await seed.captured(log, "alice"));
  await seed.captured(log, "carol");
  await seed.agentHeartbeat(log, "dc01-agent", "dc01.corp.example", { queueDepth: 3, oldestAge: 12 });
  const { appendToStream } = await import("@pwsync/eventlog");
  const { newEvent } = await import("@pwsync/proto");
  await appendToStream(
    log.db,
    "admin-audit",
    [
      {
        ...newEvent("AdminAccessDenied", {
          method: "/pwsync.v1.AdminService/GetStatus",
          code: "PERMISSION_DENIED",
          subject: "dc01-agent",
          peer: "ipv4:10.0.0.5:5123",
          detail: "no admin role",
        }),
        metadata: { actor: "admin" },
      },
    ],
    { expectedVersion: "any" },
  );
  await appendToStream(
    log.db,
    "watchdog-filter_not_loaded-dc03-agent",
    [
      {
        ...newEvent("WatchdogAlertRaised", { kind: "filter_not_loaded", subject: "dc03-agent", detail: "filter not loaded" }),
        metadata: { actor: "admin-watchdog" },
      },
    ],
    { expectedVersion: "no_stream" },
  );
});

afterAll(async () => {
  await log?.close();
});

describe("Grafana provisioning", () => {
  it("has the three dashboards", () => {
    expect(dashboards.map((d) => d.json.uid).sort()).toEqual(["pwsync-audit", "pwsync-health", "pwsync-traces"]);
  });

  it("every datasource a dashboard names is provisioned, with the same type", () => {
    const byUid = new Map(provisioned.map((d) => [d.uid, d.type]));
    for (const { file, json } of dashboards)
      for (const panel of json.panels)
        for (const ds of [panel.datasource, ...(panel.targets ?? []).map((t) => t.datasource)]) {
          if (!ds) continue;
          expect(byUid.get(ds.uid), `${file} / ${panel.title}: datasource ${ds.uid}`).toBe(ds.type);
        }
  });

  const sqlPanels = dashboards.flatMap(({ file, json }) =>
    json.panels.flatMap((panel) => (panel.targets ?? []).filter((t) => t.rawSql).map((target) => ({ name: `${file} / ${panel.title}`, panel, target }))),
  );

  it("there are SQL panels to check", () => {
    expect(sqlPanels.length).toBeGreaterThanOrEqual(10);
  });

  it.each(sqlPanels)("$name: runs, returns rows and the columns its panel uses", async ({ panel, target }) => {
    const result = await sql.raw<Record<string, unknown>>(expand(target.rawSql!)).execute(log.db);
    expect(result.rows.length, "no rows from realistic data").toBeGreaterThan(0);
    const columns = Object.keys(result.rows[0]!);
    expect(columns).toEqual(expect.arrayContaining(usedColumns(panel, target)));
    if (target.format === "time_series") expect(result.rows[0]!.time).toBeInstanceOf(Date);
  });
});
