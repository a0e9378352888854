import { randomBytes, randomUUID } from "node:crypto";
import pg from "pg";
import { createTestDatabase } from "@pwsync/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { appendToStream } from "./appendToStream.js";
import { openEventLog, type EventLog } from "./open.js";
import { ensureServiceRole, grantServiceRole } from "./privileges.js";

let owner: EventLog;
let service: EventLog;
let serviceClient: pg.Client;
const role = `pwsync_app_${randomBytes(4).toString("hex")}`;

beforeAll(async () => {
  owner = await openEventLog(await createTestDatabase("privileges"));
  const password = randomBytes(12).toString("hex");
  await ensureServiceRole(owner.pool, role, password);
  await grantServiceRole(owner.pool, role);
  const url = new URL(owner.connectionString);
  url.username = role;
  url.password = password;
  // The service role runs the migrator at start like every service: nothing pending, so it passes.
  service = await openEventLog(url.toString());
  serviceClient = new pg.Client(url.toString());
  await serviceClient.connect();
});

afterAll(async () => {
  await serviceClient?.end();
  await service?.close();
  await owner?.close();
});

const refused = (statement: string) =>
  serviceClient.query(statement).then(
    () => "accepted",
    (err: Error) => err.message,
  );

describe("the services' database role", () => {
  it("appends and reads events like the services need", async () => {
    const streamId = `change-${randomUUID()}`;
    const result = await appendToStream(service.db, streamId, [{ type: "ChangeCaptured", data: {} }], { expectedVersion: "no_stream" });
    expect(result.success).toBe(true);
    // The trigger keeps the projection as the owner, so the append still moves it.
    const state = await serviceClient.query("SELECT state FROM change_summaries WHERE stream_id = $1", [streamId]);
    expect(state.rows).toEqual([{ state: "captured" }]);
  });

  it.each([
    ["disable the append-only triggers", "ALTER TABLE events DISABLE TRIGGER ALL", /must be owner/],
    ["drop a trigger", "DROP TRIGGER events_append_only ON events", /must be owner/],
    ["skip triggers for the session", "SET session_replication_role = replica", /permission denied/],
    ["update an event", "UPDATE events SET type = 'x'", /permission denied/],
    ["delete events", "DELETE FROM events", /permission denied/],
    ["truncate events", "TRUNCATE events", /permission denied/],
    ["create a table", "CREATE TABLE shadow (x int)", /permission denied/],
    ["drop the table", "DROP TABLE events", /must be owner/],
    ["rewrite a change's state in the admin view's projection", "UPDATE change_states SET state = 'password_set'", /permission denied/],
    ["forge the per-state counts", "UPDATE change_state_counts SET failed = 0", /permission denied/],
    [
      "add a change to the projection without its event",
      "INSERT INTO change_states (stream_id, global_position, last_version, last_event_type, state, updated_at) VALUES ('change-x', -1, 1, 'PasswordSet', 'password_set', now())",
      /permission denied/,
    ],
  ])("cannot %s", async (_what, statement, error) => {
    expect(await refused(statement)).toMatch(error);
  });
});
