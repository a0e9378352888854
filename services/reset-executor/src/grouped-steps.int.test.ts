import { randomUUID } from "node:crypto";
import { appendToStream, type EventLog, FencedOut, type Fence, openEventLog, readStream } from "@pwsync/eventlog";
import { createTestDatabase } from "@pwsync/testkit";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChangeReads } from "./change-reads.js";
import { OutcomeCommits, type Outcome } from "./outcome-commits.js";
import { WriteClaims } from "./write-claims.js";

// The executor's grouped database steps against real Postgres: the read that starts a change,
// the fenced claim on a Graph write (several changes in one statement each) and the outcome
// commits (several per transaction), including what happens when one member of a group must
// not pass.

let log: EventLog;
const group = "claims-test";
beforeAll(async () => {
  log = await openEventLog(await createTestDatabase("claims"));
  for (const partition of [0, 1, 2])
    await sql`INSERT INTO consumer_checkpoints (group_name, partition, transaction_id, global_position, fence) VALUES (${group}, ${partition}, '0', '0', 5)`.execute(
      log.db,
    );
});
afterAll(async () => {
  await log?.close();
});

const fence = (partition: number, token = 5n): Fence => ({ group, partition, token });
const attemptsOf = async (user: string) =>
  (await sql<{ change_id: string }>`SELECT change_id FROM graph_write_attempts WHERE entra_user_id = ${user} ORDER BY change_id`.execute(log.db)).rows.map(
    (r) => r.change_id,
  );

describe("WriteClaims: the fenced claim right before a Graph write", () => {
  it("in one round, grants the owners, refuses a stale token, and makes a change wait for another change's write in flight", async () => {
    const claims = new WriteClaims(log.db, 60_000);
    await sql`INSERT INTO graph_write_attempts (attempt_id, entra_user_id, change_id, expires_at)
              VALUES (gen_random_uuid(), 'busy', 'earlier', now() + interval '20 seconds'),
                     (gen_random_uuid(), 'again', 'same', now() + interval '20 seconds'),
                     (gen_random_uuid(), 'stale-row', 'old', now() - interval '1 second')`.execute(log.db);
    const results = await Promise.allSettled([
      claims.claim({ fence: fence(0), entraUserId: "free", changeId: "c1" }),
      claims.claim({ fence: fence(1, 4n), entraUserId: "fenced", changeId: "c2" }),
      claims.claim({ fence: fence(2), entraUserId: "busy", changeId: "c3" }),
      claims.claim({ fence: fence(2), entraUserId: "again", changeId: "same" }),
      claims.claim({ fence: fence(0), entraUserId: "stale-row", changeId: "c4" }),
    ]);
    const [free, fenced, busy, again, expired] = results;
    expect(free.status === "fulfilled" && "attemptId" in free.value).toBe(true);
    expect(fenced.status === "rejected" && fenced.reason instanceof FencedOut).toBe(true);
    expect(busy.status === "fulfilled" && "waitMs" in busy.value && busy.value.waitMs).toBeGreaterThan(15_000);
    // The same change's earlier attempt carries the same password: no wait.
    expect(again.status === "fulfilled" && "attemptId" in again.value).toBe(true);
    expect(expired.status === "fulfilled" && "attemptId" in expired.value).toBe(true);
    expect(await attemptsOf("free")).toEqual(["c1"]);
    expect(await attemptsOf("fenced")).toEqual([]);
    expect(await attemptsOf("busy")).toEqual(["earlier"]);
    expect(await attemptsOf("again")).toEqual(["same", "same"]);
    // The expired attempt is gone; the new one recorded.
    expect(await attemptsOf("stale-row")).toEqual(["c4"]);
  });

  it("a claim made while a new owner raises the token waits for it and is refused, recording nothing", async () => {
    const claims = new WriteClaims(log.db, 60_000);
    const raiser = await log.db.connection().execute(async (conn) => {
      await sql`BEGIN`.execute(conn);
      await sql`UPDATE consumer_checkpoints SET fence = fence + 1 WHERE group_name = ${group} AND partition = 1`.execute(conn);
      const pending = claims.claim({ fence: fence(1), entraUserId: "raced", changeId: "c5" });
      await new Promise((r) => setTimeout(r, 200));
      await sql`COMMIT`.execute(conn);
      return pending.then(
        () => "granted",
        (err: unknown) => (err instanceof FencedOut ? "fenced" : String(err)),
      );
    });
    expect(raiser).toBe("fenced");
    expect(await attemptsOf("raced")).toEqual([]);
  });
});

describe("OutcomeCommits: outcomes group-committed", () => {
  const outcome = async (user: string, expectedVersion = 1): Promise<Outcome> => {
    const changeId = randomUUID();
    const streamId = `change-${changeId}`;
    await appendToStream(log.db, streamId, [{ type: "ChangeCaptured", data: {} }], { expectedVersion: "no_stream" });
    await sql`INSERT INTO sealed_secrets (change_id, key_id, envelope) VALUES (${changeId}, 'k', '\\x00')`.execute(log.db);
    return {
      changeId,
      streamId,
      expectedVersion,
      events: [
        { type: "PasswordSet", data: { changeId } },
        { type: "SecretShredded", data: { changeId } },
      ],
      shred: true,
      answeredAttempt: undefined,
      user: { entraUserId: user, changedAt: new Date(), orderKey: Buffer.from(changeId) },
    };
  };
  const typesOf = async (o: Outcome) => (await readStream(log.db, o.streamId)).map((e) => e.type);
  const secretOf = async (o: Outcome) => (await sql`SELECT 1 FROM sealed_secrets WHERE change_id = ${o.changeId}`.execute(log.db)).rows.length;

  it("commits concurrent outcomes, and one that moved on fails alone while the others commit", async () => {
    const commits = new OutcomeCommits(log.db);
    const good = await Promise.all([outcome("oc-a"), outcome("oc-b"), outcome("oc-c")]);
    const movedOn = await outcome("oc-d", 7);
    const results = await Promise.allSettled([...good, movedOn].map((o) => commits.commit(o)));
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "fulfilled", "rejected"]);
    for (const o of good) {
      expect(await typesOf(o)).toEqual(["ChangeCaptured", "PasswordSet", "SecretShredded"]);
      expect(await secretOf(o)).toBe(0);
    }
    expect(await typesOf(movedOn)).toEqual(["ChangeCaptured"]);
    expect(await secretOf(movedOn)).toBe(1);
    const users = await sql<{ n: string }>`SELECT count(*) AS n FROM executor_user_state WHERE entra_user_id IN ('oc-a', 'oc-b', 'oc-c', 'oc-d')`.execute(
      log.db,
    );
    expect(Number(users.rows[0]?.n)).toBe(3);
  });

  it("two outcomes of one user commit one after the other; the user keeps the newer change", async () => {
    const commits = new OutcomeCommits(log.db);
    const [older, newer] = [await outcome("oc-same"), await outcome("oc-same")];
    newer.user.orderKey = Buffer.from("zzzz");
    older.user.orderKey = Buffer.from("aaaa");
    await Promise.all([commits.commit(newer), commits.commit(older)]);
    const row = await sql<{ change_id: string }>`SELECT change_id FROM executor_user_state WHERE entra_user_id = 'oc-same'`.execute(log.db);
    expect(row.rows[0]?.change_id).toBe(newer.changeId);
  });
});

describe("ChangeReads: what starts a change, for several changes in one statement", () => {
  it("gives each change its own stream, sealed password and user's newest finished change", async () => {
    const [a, b] = [randomUUID(), randomUUID()];
    await appendToStream(
      log.db,
      `change-${a}`,
      [
        { type: "ChangeCaptured", data: { n: 1 } },
        { type: "UserResolved", data: { n: 2 } },
      ],
      {
        expectedVersion: "no_stream",
      },
    );
    await appendToStream(log.db, `change-${b}`, [{ type: "ChangeCaptured", data: { n: 3 } }], { expectedVersion: "no_stream" });
    await sql`INSERT INTO sealed_secrets (change_id, key_id, envelope) VALUES (${a}, 'key-a', '\\x0102')`.execute(log.db);
    const newer = randomUUID();
    await sql`INSERT INTO executor_user_state (entra_user_id, change_id, changed_at, order_key) VALUES ('read-b', ${newer}, now(), '\\x09')`.execute(log.db);
    const reads = new ChangeReads(log.db);
    const [readA, readB, readNone] = await Promise.all([
      reads.read({ streamId: `change-${a}`, changeId: a, entraUserId: "read-a" }),
      reads.read({ streamId: `change-${b}`, changeId: b, entraUserId: "read-b" }),
      reads.read({ streamId: "change-nothing", changeId: randomUUID(), entraUserId: "read-c" }),
    ]);
    expect(readA.stream.map((e) => [e.type, e.data])).toEqual([
      ["ChangeCaptured", { n: 1 }],
      ["UserResolved", { n: 2 }],
    ]);
    expect(readA.sealed).toEqual({ keyId: "key-a", envelope: Buffer.from([1, 2]) });
    expect(readA.newestOfUser).toBeUndefined();
    expect(readB.stream.map((e) => e.data)).toEqual([{ n: 3 }]);
    expect(readB.sealed).toBeUndefined();
    expect(readB.newestOfUser).toMatchObject({ changeId: newer, orderKey: Buffer.from([9]) });
    expect(readNone).toEqual({ stream: [], sealed: undefined, newestOfUser: undefined });
  });
});
