import { events } from "@pwsync/proto";
import { createTestDatabase } from "@pwsync/testkit";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { appendToStream } from "./appendToStream.js";
import { CHANGE_STATE_AFTER, CHANGE_STEP_TYPES, isChangeStep } from "./lifecycle.js";
import { listChanges } from "./listChanges.js";
import { openEventLog, type EventLog } from "./open.js";
import { changeStreamId } from "./streams.js";

// The SQL side of the lifecycle and of stream names (migration 0009) must say what
// lifecycle.ts and streams.ts say. When this fails after editing a constant, add a migration
// that replaces the SQL function.

let log: EventLog;
beforeAll(async () => {
  log = await openEventLog(await createTestDatabase("lifecycle"));
});
afterAll(() => log.close());

const eventTypes = [...Object.keys(events), "SomethingNew"];

describe("the change lifecycle in SQL", () => {
  it("change_state_after() gives every event type the state lifecycle.ts gives it, and none to the others", async () => {
    const { rows } = await sql<{ type: string; state: string | null }>`
      SELECT t AS type, change_state_after(t) AS state FROM unnest(${eventTypes}::text[]) AS t`.execute(log.db);
    expect(Object.fromEntries(rows.map((r) => [r.type, r.state]))).toEqual(
      Object.fromEntries(eventTypes.map((t) => [t, isChangeStep(t) ? CHANGE_STATE_AFTER[t] : null])),
    );
  });

  it("change_step_types() lists exactly the steps", async () => {
    const { rows } = await sql<{ types: string[] }>`SELECT change_step_types() AS types`.execute(log.db);
    expect([...rows[0]!.types].sort()).toEqual([...CHANGE_STEP_TYPES].sort());
  });

  it("change_id_of_stream() reads the change id out of a change stream name as streams.ts writes it", async () => {
    const changeId = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
    const { rows } = await sql<{ change: string | null; other: string | null }>`
      SELECT change_id_of_stream(${changeStreamId(changeId)}) AS change, change_id_of_stream('ingest-audit') AS other`.execute(log.db);
    expect(rows[0]).toEqual({ change: changeId, other: null });
  });

  it("the admin view shows a change in the state of its latest step, with the failure's reason, ignoring bookkeeping events", async () => {
    const changeId = "5b1e0c1a-7d55-4a7e-9f4e-1a2b3c4d5e6f";
    const stream = changeStreamId(changeId);
    await appendToStream(
      log.db,
      stream,
      [
        { type: "ChangeCaptured", data: { changeId, accountName: "jdoe" } },
        { type: "UserResolved", data: { changeId } },
        { type: "ResetFailed", data: { changeId, reason: "RESET_FAILURE_REASON_COMPLEXITY", detail: "too short" } },
        { type: "SecretShredded", data: { changeId } },
        { type: "NotificationSent", data: { changeId } },
      ],
      { expectedVersion: "no_stream" },
    );
    const [row] = await listChanges(log.db, { account: "jdoe" }, 10);
    expect(row).toMatchObject({
      change_id: changeId,
      state: "failed",
      last_event_type: "ResetFailed",
      reason: "RESET_FAILURE_REASON_COMPLEXITY",
      detail: "too short",
    });
  });
});
