import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  changeCountsByState,
  changeStreamId,
  consumerGroupStatus,
  eventLogHead,
  getChangeSummary,
  listAgentStatus,
  listChanges,
  loadSealedSecret,
  readCheckpoint,
  readPartitionBatch,
  readStream,
  type ChangeStateName,
  type Database,
  type EventLog,
} from "@pwsync/eventlog";
import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { activeAlerts, startWatchdog } from "../../services/admin/src/watchdog.js";
import type { WatchdogSettings } from "../../services/admin/src/config.js";
import { accountOf, DOMAIN_CONTROLLERS, USERS } from "./history-fill.js";

// What the history bench times and the plan test explains: the admin's reads, one watchdog
// tick and a consumer's batch read run through the services' own functions (so a rewrite of
// those is what gets measured), and every SQL panel of the Grafana dashboards with realistic
// variables (the dashboards' default range, the last 24 hours).

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const DASHBOARD_FILES = ["pwsync-audit.json", "pwsync-health.json", "pwsync-traces.json"].map((f) =>
  path.join(repoRoot, "deploy/grafana/dashboards", f),
);

export interface Recorded {
  sql: string;
  parameters: readonly unknown[];
}

/** An EventLog whose Kysely also remembers each statement it ran, for EXPLAIN. */
export function recordingLog(connectionString: string, recorded: Recorded[]): EventLog {
  const pool = new pg.Pool({ connectionString, max: 6 });
  // As openEventLog does: an idle client dropped by the server must not end the process.
  pool.on("connect", (client) => client.on("error", () => {}));
  pool.on("error", () => {});
  const db = new Kysely<Database>({
    dialect: new PostgresDialect({ pool }),
    log: (event) => {
      if (event.level === "query") recorded.push({ sql: event.query.sql, parameters: event.query.parameters });
    },
  });
  return { db, pool, connectionString, close: () => db.destroy() };
}

/** The statements one call of `operation` made that only read (what EXPLAIN may run again). */
export async function readStatementsOf(operation: TimedOperation, recorded: Recorded[]): Promise<Recorded[]> {
  recorded.length = 0;
  await operation.run(0);
  return recorded.splice(0).filter((r) => /^\s*(\/\*.*?\*\/\s*)*(select|with)\b/is.test(r.sql));
}

export interface Samples {
  /** Change ids spread over the whole year. */
  changeIds: string[];
  /** A user with several changes, for per-account views. */
  users: number[];
  /** The history's first and last capture. */
  from: Date;
  to: Date;
}

export interface TimedOperation {
  name: string;
  /** One call; `i` varies the parameters (account, state, day, change). */
  run(i: number): Promise<unknown>;
}

const silentLogger = { info() {}, warn() {}, error() {}, debug() {}, child: () => silentLogger } as never;

export const WATCHDOG_SETTINGS: WatchdogSettings = {
  enabled: true,
  intervalSeconds: 3600,
  heartbeatMissedSeconds: 180,
  queueAgeSeconds: 900,
  spoolAgeSeconds: 600,
  dcSilentHours: 24,
  knownDomainControllers: DOMAIN_CONTROLLERS,
  email: false,
};

const STATES: ChangeStateName[] = ["failed", "captured", "superseded", "password_set", "retry_requested", "retrying", "resolved"];
const DAY_MS = 24 * 3600 * 1000;

export async function pickSamples(log: EventLog): Promise<Samples> {
  const ids = await log.pool.query<{ change_id: string }>(
    `SELECT s.change_id FROM generate_series(1, 100) g
      CROSS JOIN LATERAL (SELECT substr(stream_id, 8) AS change_id FROM change_states
                           WHERE global_position >= g * (SELECT max(global_position) FROM events) / 101
                           ORDER BY global_position LIMIT 1) s`,
  );
  const range = await log.pool.query<{ first: Date; last: Date }>(
    "SELECT min(created_at) AS first, max(created_at) AS last FROM events WHERE global_position IN ((SELECT min(global_position) FROM events), (SELECT max(global_position) FROM events))",
  );
  return {
    changeIds: ids.rows.map((r) => r.change_id),
    users: Array.from({ length: 50 }, (_, i) => (i * 7919) % USERS),
    from: range.rows[0]!.first,
    to: range.rows[0]!.last,
  };
}

/** The admin, watchdog and consumer reads, as the services make them; stop() ends the watchdog. */
export function serviceOperations(log: EventLog, samples: Samples): { operations: TimedOperation[]; stop(): Promise<void> } {
  const db = log.db;
  const watchdog = startWatchdog({ log, logger: silentLogger, settings: WATCHDOG_SETTINGS });
  const spanMs = samples.to.getTime() - samples.from.getTime();
  const dayStart = (i: number) => new Date(samples.from.getTime() + Math.floor(((i * 37) % 360) * (spanMs / 365) + DAY_MS / 2));
  const pick = <T>(list: readonly T[], i: number) => list[i % list.length]!;
  const operations: TimedOperation[] = [
    {
      // The GetStatus handler's five reads, concurrently as it makes them.
      name: "getStatus",
      run: () => Promise.all([consumerGroupStatus(db), changeCountsByState(db), eventLogHead(db), listAgentStatus(db), activeAlerts(log)]),
    },
    { name: "listChangesFirstPage", run: () => listChanges(db, {}, 51) },
    {
      name: "listChangesByAccount",
      run: (i) => {
        const user = accountOf(pick(samples.users, i));
        return listChanges(db, { account: i % 2 ? user : `${user}@contoso.example` }, 51);
      },
    },
    { name: "listChangesByState", run: (i) => listChanges(db, { state: pick(STATES, i) }, 51) },
    {
      name: "listChangesByTime",
      run: (i) => listChanges(db, { since: dayStart(i), until: new Date(dayStart(i).getTime() + DAY_MS) }, 51),
    },
    {
      // The GetChange handler's three reads.
      name: "getChange",
      run: (i) => {
        const changeId = pick(samples.changeIds, i);
        return Promise.all([getChangeSummary(db, changeId), readStream(db, changeStreamId(changeId)), loadSealedSecret(db, changeId)]);
      },
    },
    { name: "watchdogTick", run: () => watchdog.check() },
    {
      // The reset-executor's next batch in one partition, from its stored checkpoint.
      name: "consumerRead",
      run: async (i) => {
        const partition = i % 8;
        const from = await readCheckpoint(db, "reset-executor", partition);
        return readPartitionBatch(db, partition, from, ["UserResolved"], 200);
      },
    },
  ];
  return { operations, stop: () => watchdog.stop() };
}

interface Panel {
  title: string;
  targets?: Array<{ rawSql?: string }>;
  panels?: Panel[];
}

function sqlPanels(file: string): Array<{ title: string; sql: string }> {
  const dashboard = JSON.parse(readFileSync(file, "utf8")) as { panels: Panel[] };
  const out: Array<{ title: string; sql: string }> = [];
  const walk = (panels: Panel[]) => {
    for (const panel of panels) {
      for (const target of panel.targets ?? []) if (target.rawSql) out.push({ title: panel.title, sql: target.rawSql });
      if (panel.panels) walk(panel.panels);
    }
  };
  walk(dashboard.panels);
  return out;
}

/** Grafana's PostgreSQL macros and template variables, expanded the way Grafana does. */
export function expandGrafanaSql(sql: string, vars: { from: Date; to: Date; account: string; changeId: string }): string {
  const quote = (value: string) => value.replace(/'/g, "''");
  return sql
    .replace(/\$__timeFilter\(([^)]+)\)/g, (_, column: string) => `${column.trim()} BETWEEN '${vars.from.toISOString()}' AND '${vars.to.toISOString()}'`)
    .replace(/\$__timeGroupAlias\(([^,]+),\s*'(\d+)m'\)/g, (_, column: string, minutes: string) => {
      const seconds = Number(minutes) * 60;
      return `floor(extract(epoch from ${column.trim()})/${seconds})*${seconds} AS "time"`;
    })
    .replace(/\$\{account\}/g, quote(vars.account))
    .replace(/\$\{change_id\}/g, quote(vars.changeId));
}

/** Every SQL panel of the dashboards, keyed by a name derived from its title. */
export function grafanaOperations(log: EventLog, samples: Samples): TimedOperation[] {
  const operations: TimedOperation[] = [];
  for (const file of DASHBOARD_FILES) {
    const dashboard = path.basename(file, ".json").replace(/^pwsync-/, "");
    for (const panel of sqlPanels(file)) {
      const words = panel.title.replace(/\(.*\)/g, "").match(/[A-Za-z0-9]+/g) ?? [];
      const key = `${dashboard}.${words.map((w, i) => (i === 0 ? w.toLowerCase() : w[0]!.toUpperCase() + w.slice(1).toLowerCase())).join("")}`;
      operations.push({
        name: key,
        // Through Kysely like the rest, so the plan printer sees the statement.
        run: (i) =>
          sql
            .raw(
              expandGrafanaSql(panel.sql, {
                from: new Date(samples.to.getTime() - DAY_MS),
                to: samples.to,
                account: accountOf(samples.users[i % samples.users.length]!),
                changeId: samples.changeIds[i % samples.changeIds.length]!,
              }),
            )
            .execute(log.db),
      });
    }
  }
  return operations;
}
