import { randomUUID } from "node:crypto";
import { openEventLog, readStream, type EventLog } from "@pwsync/eventlog";
import { createTestDatabase } from "@pwsync/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { commitChanges, type ChangeToCommit } from "./commit.js";
import type { ValidChange } from "./validate.js";

let log: EventLog;
beforeAll(async () => {
  log = await openEventLog(await createTestDatabase("commit"));
});
afterAll(() => log.close());

const agent = { agentId: "dc01", fingerprint256: "AA:BB" };

function validChange(accountName: string): ValidChange {
  return {
    changeId: randomUUID(),
    accountName,
    userPrincipalName: `${accountName}@contoso.example`,
    mail: "",
    immutableId: "",
    changedAt: new Date(),
    domainController: "dc01.contoso.example",
    agentSequence: 1n,
    capturedAt: undefined,
    captureSequence: 0n,
    traceparent: "",
    keyId: "key-1",
  };
}

function toCommit(change: ValidChange, envelope = Buffer.from(`sealed-${change.changeId}`)): ChangeToCommit {
  return { change, sealedEnvelope: envelope, agent, scope: ["contoso.example"], receivedAt: new Date() };
}

async function secretsOf(changeIds: string[]): Promise<string[]> {
  const rows = await log.db.selectFrom("sealed_secrets").select("change_id").where("change_id", "in", changeIds).execute();
  return rows.map((r) => r.change_id).sort();
}

describe("commitChanges (one group commit)", () => {
  it("commits every change of the batch with its sealed secret, records refusals without one, and answers each in order", async () => {
    const a = validChange("alice");
    const b = validChange("bob");
    const outside = validChange("mallory");
    const outcomes = await commitChanges(log, [toCommit(a), toCommit(b)], [{ change: outside, agent, reason: "OUT_OF_SCOPE", detail: "not ours" }]);
    expect(outcomes.map((o) => [o.changeId, o.status])).toEqual([
      [outside.changeId, "refused"],
      [a.changeId, "committed"],
      [b.changeId, "committed"],
    ]);
    for (const outcome of outcomes) {
      const [first] = await readStream(log.db, `change-${outcome.changeId}`);
      expect(first!.globalPosition).toBe(outcome.globalPosition);
      expect(first!.type).toBe(outcome.status === "refused" ? "ChangeRefused" : "ChangeCaptured");
    }
    expect(await secretsOf([a.changeId, b.changeId, outside.changeId])).toEqual([a.changeId, b.changeId].sort());
  });

  it("answers a change sent twice in one batch, and again in a later one, as a duplicate of the first, stored once", async () => {
    const a = validChange("carol");
    const first = await commitChanges(log, [toCommit(a), toCommit(a, Buffer.from("a different envelope"))]);
    expect(first.map((o) => o.status)).toEqual(["committed", "duplicate"]);
    expect(first[1]!.globalPosition).toBe(first[0]!.globalPosition);
    const later = await commitChanges(log, [toCommit(a), toCommit(validChange("dave"))]);
    expect(later.map((o) => o.status)).toEqual(["duplicate", "committed"]);
    expect(later[0]!.globalPosition).toBe(first[0]!.globalPosition);
    expect(await readStream(log.db, `change-${a.changeId}`)).toHaveLength(1);
    const secret = await log.db.selectFrom("sealed_secrets").select("envelope").where("change_id", "=", a.changeId).executeTakeFirstOrThrow();
    expect(secret.envelope.toString()).toBe(`sealed-${a.changeId}`);
  });

  it("answers a re-sent refused change as refused again", async () => {
    const outside = validChange("eve");
    await commitChanges(log, [], [{ change: outside, agent, reason: "NO_SCOPE", detail: "no scope" }]);
    const again = await commitChanges(log, [toCommit(outside)]);
    expect(again.map((o) => o.status)).toEqual(["refused"]);
    expect(await secretsOf([outside.changeId])).toEqual([]);
  });
});
