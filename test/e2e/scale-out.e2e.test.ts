import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { demoUsers, generatedPassword, pushChanges, startStack, waitForOutcomes, type PlannedChange, type Stack } from "@pwsync/devstack";
import { openEventLog, type EventLog } from "@pwsync/eventlog";
import { sandboxControl } from "@pwsync/sandbox-tenant";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// What orchestration relies on: three replicas of each consumer service as separate processes
// against one Postgres share the work with none done twice and none lost; every entry point
// answers the gRPC health probe the containers use; SIGTERM mid-load finishes or releases
// in-flight work and exits 0.

const probe = fileURLToPath(new URL("../../deploy/container/healthcheck.mjs", import.meta.url));
const users = demoUsers(300);
let stack: Stack;
let log: EventLog;

beforeAll(async () => {
  stack = await startStack({
    dataDir: mkdtempSync(path.join(tmpdir(), "pwsync-scale-")),
    ports: "random",
    sandbox: { users, scryptCost: 2, persistState: false },
    replicas: { resolver: 3, "reset-executor": 3, notifier: 3 },
    // 150 changes/s from two agents is above ingest's default per-agent rate limit.
    overlay: { ingest: { agentRateLimit: { perSecond: 1000, burst: 1000 } }, notifier: { notifyAdmins: false } },
  });
  log = await openEventLog(stack.databaseUrl, { migrate: false, maxConnections: 3 });
}, 600_000); // a bound for starting real processes on a loaded 2-core machine, not a schedule

afterAll(async () => {
  await log?.close();
  await stack?.stop();
});

function healthy(port: number, tlsCa?: string): boolean {
  const args = [probe, String(port), ...(tlsCa ? ["--tls-ca", tlsCa] : [])];
  return spawnSync(process.execPath, args, { timeout: 10_000 }).status === 0;
}

describe("three replicas of each consumer", () => {
  it("every entry point answers the container health probe", () => {
    const ca = stack.pki.ca.cert;
    expect(healthy(Number(stack.ingestAddress.split(":")[1]), ca)).toBe(true);
    expect(healthy(Number(stack.adminAddress.split(":")[1]), ca)).toBe(true);
    const workers = [...stack.services.values()].filter((s) => /^(resolver|reset-executor|notifier)#/.test(s.name));
    expect(workers).toHaveLength(9);
    for (const worker of workers) expect({ worker: worker.name, healthy: healthy(Number(worker.readyValue)) }).toEqual({ worker: worker.name, healthy: true });
  });

  it("share the work under load, none done twice, none lost, and survive a SIGTERM mid-load", async () => {
    const control = sandboxControl(stack.sandboxUrl!, readFileSync(stack.pki.ca.cert));
    await control.faults({ reset: true, latencyMs: 5 });
    const before = (await control.stats()).counters.writes!;
    const start = Date.now() - 900;
    const planned: PlannedChange[] = Array.from({ length: 900 }, (_, i) => ({
      changeId: randomUUID(),
      user: users[i % users.length]!,
      password: generatedPassword(),
      changedAt: new Date(start + i),
      agent: i % 2 ? "dc01" : "dc02",
    }));
    const pushing = pushChanges(stack, planned, { ratePerSecond: 150, streamsPerAgent: 2 });
    await new Promise((r) => setTimeout(r, 2500));
    const leaving = stack.services.get("reset-executor#1")!;
    leaving.child.kill("SIGTERM");
    expect(await leaving.exited).toBe(0);
    await pushing;
    const outcomes = await waitForOutcomes(log, new Set(planned.map((p) => p.changeId)), { timeoutMs: 180_000 });
    expect(outcomes.size).toBe(planned.length);

    const ids = planned.map((p) => `change-${p.changeId}`);
    const perStream = await sql<{ stream_id: string; resolved: string; terminal: string; shredded: string }>`
      SELECT stream_id,
             count(*) FILTER (WHERE type = 'UserResolved') AS resolved,
             count(*) FILTER (WHERE type IN ('PasswordSet', 'ResetFailed', 'Superseded', 'ResolutionFailed')) AS terminal,
             count(*) FILTER (WHERE type = 'SecretShredded') AS shredded
        FROM events WHERE stream_id = ANY(${ids}) GROUP BY stream_id`.execute(log.db);
    expect(perStream.rows).toHaveLength(planned.length);
    expect(perStream.rows.filter((r) => r.resolved !== "1" || r.terminal !== "1" || r.shredded !== "1")).toEqual([]);
    // One Graph write per password set: no PATCH was repeated by two replicas.
    const set = [...outcomes.values()].filter((o) => o.type === "PasswordSet").length;
    expect((await control.stats()).counters.writes! - before).toBe(set);
    // All three executors and resolvers took part.
    const actors = await sql<{ group_name: string; members: string }>`
      SELECT group_name, count(DISTINCT member_id) AS members FROM consumer_members GROUP BY group_name`.execute(log.db);
    expect(Object.fromEntries(actors.rows.map((r) => [r.group_name, Number(r.members)]))).toMatchObject({ resolver: 3, notifier: 3 });
    await control.faults({ reset: true });
  }, 300_000);
});
