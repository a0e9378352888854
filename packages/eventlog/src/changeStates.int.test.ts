import { randomUUID } from "node:crypto";
import { createTestDatabase } from "@pwsync/testkit";
import { Migrator, sql, type Kysely } from "kysely";
import { describe, expect, it } from "vitest";
import { changeCountsByState } from "./adminStatus.js";
import { appendToStream } from "./appendToStream.js";
import { migrationProvider } from "./migrations/index.js";
import { openEventLog, type EventLog } from "./open.js";
import type { Database } from "./schema.js";
import type { NewEvent } from "./types.js";

// Migration 0010 replaced the change_summaries view's search for each change's latest event by
// a projection the append trigger keeps. These tests hold it to the old definition, verbatim
// below: on a log that existed before the migration (the backfill) and for appends after it,
// including concurrent writers and multi-event appends (the trigger and the state counters).

const OLD_VIEW = sql`
  SELECT c.global_position, substr(c.stream_id, 8) AS change_id, c.stream_id,
         coalesce(c.data->>'accountName', '') AS account_name, coalesce(c.data->>'userPrincipalName', '') AS user_principal_name,
         coalesce(c.data->>'mail', '') AS mail, coalesce(c.data->>'domainController', '') AS domain_controller,
         coalesce(c.data->>'agentId', '') AS agent_id, c.created_at AS captured_at, l.type AS last_event_type, l.created_at AS updated_at,
         CASE l.type WHEN 'ChangeCaptured' THEN 'captured' WHEN 'UserResolved' THEN 'resolved' WHEN 'RetryScheduled' THEN 'retrying'
           WHEN 'PasswordSet' THEN 'password_set' WHEN 'ResetFailed' THEN 'failed' WHEN 'ResolutionFailed' THEN 'failed'
           WHEN 'Superseded' THEN 'superseded' WHEN 'RetryRequested' THEN 'retry_requested' END AS state,
         CASE WHEN l.type IN ('ResetFailed', 'ResolutionFailed') THEN coalesce(l.data->>'reason', '') ELSE '' END AS reason,
         CASE WHEN l.type IN ('ResetFailed', 'ResolutionFailed') THEN coalesce(l.data->>'detail', '') ELSE '' END AS detail,
         coalesce(split_part(c.metadata->>'traceparent', '-', 2), '') AS trace_id,
         coalesce((l.data->'timing'->>'totalMs')::bigint, 0) AS total_ms, coalesce((l.data->'timing'->>'workMs')::bigint, 0) AS work_ms,
         coalesce((l.data->'timing'->>'waitMs')::bigint, 0) AS wait_ms
    FROM events c
    CROSS JOIN LATERAL (
      SELECT x.type, x.data, x.created_at FROM events x
       WHERE x.stream_id = c.stream_id
         AND x.type IN ('ChangeCaptured', 'UserResolved', 'RetryScheduled', 'PasswordSet', 'ResetFailed', 'ResolutionFailed', 'Superseded', 'RetryRequested')
       ORDER BY x.stream_version DESC LIMIT 1) l
   WHERE c.type = 'ChangeCaptured'
   ORDER BY c.global_position`;

const timing = { totalMs: 900, workMs: 200, waitMs: 40 };
/** Every path a change takes, as the services append it (several events per append where they do). */
const LIFECYCLES: NewEvent[][][] = [
  [],
  [[{ type: "UserResolved", data: {} }]],
  [[{ type: "UserResolved", data: {} }], [{ type: "RetryScheduled", data: { attempt: 1, httpStatus: 429 } }]],
  [
    [{ type: "UserResolved", data: {} }],
    [
      { type: "PasswordSet", data: { timing } },
      { type: "SecretShredded", data: {} },
    ],
  ],
  [
    [{ type: "UserResolved", data: {} }],
    [
      { type: "Superseded", data: {} },
      { type: "SecretShredded", data: {} },
    ],
  ],
  [
    [{ type: "UserResolved", data: {} }],
    [
      { type: "ResetFailed", data: { reason: "RESET_FAILURE_REASON_COMPLEXITY", detail: "not complex enough", timing } },
      { type: "SecretShredded", data: {} },
    ],
    [{ type: "NotificationSent", data: { recipient: "helpdesk@contoso.example" } }],
  ],
  [[{ type: "ResolutionFailed", data: { reason: "RESOLUTION_FAILURE_REASON_NOT_FOUND", detail: "no such user" } }], [{ type: "RetryRequested", data: {} }]],
  [
    [{ type: "ResolutionFailed", data: { reason: "RESOLUTION_FAILURE_REASON_NOT_FOUND", detail: "no such user" } }],
    [{ type: "RetryRequested", data: {} }],
    [{ type: "UserResolved", data: {} }],
    [
      { type: "PasswordSet", data: { timing } },
      { type: "SecretShredded", data: {} },
    ],
  ],
];

async function changeLifecycle(log: EventLog, n: number): Promise<void> {
  const changeId = randomUUID();
  const streamId = `change-${changeId}`;
  const captured = {
    type: "ChangeCaptured",
    data: { changeId, accountName: `User${n}`, userPrincipalName: `user${n}@contoso.example`, domainController: `dc0${n % 3}`, agentId: `dc0${n % 3}` },
    metadata: { traceparent: `00-${changeId.replace(/-/g, "")}-00f067aa0ba902b7-01`, actor: "ingest" },
  };
  const lifecycle = LIFECYCLES[n % LIFECYCLES.length]!;
  // Some captures arrive together with their first step (a multi-event append).
  let version = n % 5 === 0 && lifecycle.length > 0 ? 0 : -1;
  if (version === 0) {
    const first = await appendToStream(log.db, streamId, [captured, ...lifecycle[0]!], { expectedVersion: "no_stream" });
    if (!first.success) throw new Error("append refused");
    version = first.nextVersion;
  } else {
    const first = await appendToStream(log.db, streamId, [captured], { expectedVersion: "no_stream" });
    if (!first.success) throw new Error("append refused");
    version = first.nextVersion;
  }
  for (const step of lifecycle.slice(n % 5 === 0 ? 1 : 0)) {
    const appended = await appendToStream(log.db, streamId, step, { expectedVersion: version });
    if (!appended.success) throw new Error("append refused");
    version = appended.nextVersion;
  }
}

async function oldViewRows(db: Kysely<Database>) {
  return (await OLD_VIEW.execute(db)).rows as Array<Record<string, unknown>>;
}

function countsFromRows(rows: Array<Record<string, unknown>>) {
  const counts: Record<string, number> = { captured: 0, resolved: 0, retrying: 0, password_set: 0, failed: 0, superseded: 0, retry_requested: 0 };
  for (const row of rows) counts[row.state as string]! += 1;
  return counts;
}

const viewRows = (db: Kysely<Database>) =>
  sql<Record<string, unknown>>`SELECT * FROM change_summaries ORDER BY global_position`.execute(db).then((r) => r.rows);

describe("change_states projection (migration 0010)", () => {
  it("the backfill gives every change already in the log the row and state the old view gave it", async () => {
    const log = await openEventLog(await createTestDatabase("states"), { migrate: false });
    try {
      const migrator = new Migrator({
        db: log.db,
        provider: migrationProvider,
        migrationTableName: "schema_migrations",
        migrationLockTableName: "schema_migrations_lock",
      });
      expect((await migrator.migrateTo("0009_change_lifecycle_functions")).error).toBeUndefined();
      for (let n = 0; n < 40; n++) await changeLifecycle(log, n);
      await appendToStream(log.db, "admin-audit", [{ type: "AdminAccessDenied", data: { code: "PERMISSION_DENIED" } }], { expectedVersion: "any" });
      const before = await viewRows(log.db);
      expect(before).toHaveLength(40);
      expect(new Set(before.map((r) => (r as { state: string }).state)).size).toBe(7);

      expect((await migrator.migrateToLatest()).error).toBeUndefined();
      expect(await viewRows(log.db)).toEqual(before);
      expect(await changeCountsByState(log.db)).toEqual(countsFromRows(before));
    } finally {
      await log.close();
    }
  });

  it("appends after it, concurrent and multi-event, keep the view equal to the old definition and the counts exact", async () => {
    const log = await openEventLog(await createTestDatabase("states"), { maxConnections: 8 });
    try {
      await Promise.all(
        Array.from({ length: 8 }, async (_, writer) => {
          for (let i = 0; i < 25; i++) await changeLifecycle(log, writer * 25 + i);
        }),
      );
      const expected = await oldViewRows(log.db);
      expect(expected).toHaveLength(200);
      expect(await viewRows(log.db)).toEqual(expected);
      expect(await changeCountsByState(log.db)).toEqual(countsFromRows(expected));
      // Concurrent writers spread their counts over several slots (fewer waits on one row).
      const slots = await sql<{ n: string }>`SELECT count(*) AS n FROM change_state_counts`.execute(log.db);
      expect(Number(slots.rows[0]!.n)).toBeGreaterThan(1);
    } finally {
      await log.close();
    }
  });
});
