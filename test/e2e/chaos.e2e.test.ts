import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { buildPasswordChange, IngestStream } from "@pwsync/agent-link";
import type { RecipientPublicKey } from "@pwsync/crypto";
import { demoUsers, startStack, waitForOutcomes, type Stack } from "@pwsync/devstack";
import { openEventLog, type EventLog } from "@pwsync/eventlog";
import { sandboxControl } from "@pwsync/sandbox-tenant";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// A bounded, seeded chaos drill: the whole stack as processes with two replicas of each
// consumer, random kill -9 of every service instance (ingest too), PostgreSQL crashed and
// restarted twice, and Graph answering slowly and with 503 bursts, while two DCs push several
// password changes per user. Afterwards: nothing lost, exactly one outcome per change, the
// newest password signs in for every user and the log says so, secrets shredded, no plaintext
// anywhere, and no 429 caused by our own write budget. PWSYNC_CHAOS_SEED replays a run.

const seed = Number(process.env.PWSYNC_CHAOS_SEED ?? 20261128);
function mulberry32(a: number): () => number {
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = mulberry32(seed);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const canary = `ChaosCanary${randomBytes(5).toString("hex")}`;
const users = demoUsers(30);
const CHANGES = 240;
const PUSH_RATE_PER_SECOND = 4;
const VICTIMS = ["ingest", "resolver#0", "resolver#1", "reset-executor#0", "reset-executor#1", "notifier#0", "notifier#1"];

let stack: Stack;
let log: EventLog;

beforeAll(async () => {
  stack = await startStack({
    dataDir: mkdtempSync(path.join(tmpdir(), "pwsync-chaos-")),
    ports: "random",
    // Graph's budget, scaled down so that our own budget is what keeps us under it. Ours keeps
    // headroom for the time between taking a slot and the request reaching Graph (latency, a
    // token fetch after a restart): 25% of a 10 s window here; the default keeps 5% of 150 s.
    sandbox: { users, scryptCost: 2, persistState: false, writeBudget: "40/10" },
    replicas: { resolver: 2, "reset-executor": 2, notifier: 2 },
    overlay: {
      graph: { requestTimeoutMs: 4000 },
      executor: {
        retryLimit: 10,
        backoff: { baseMs: 200, maxMs: 2000 },
        rateLimit: { writesPerWindow: 30, windowSeconds: 10 },
        fencing: { maxSendDelayMs: 1000, graceMs: 2000 },
      },
    },
  });
  log = await openEventLog(stack.databaseUrl, { migrate: false, maxConnections: 2 });
}, 240_000);

afterAll(async () => {
  await log?.close().catch(() => {});
  await stack?.stop();
});

interface Planned {
  changeId: string;
  user: (typeof users)[number];
  password: string;
  changedAt: Date;
  agent: string;
  sequence: bigint;
}

/** An agent's delivery loop: retries on a fresh stream until ingest confirms, as the dc-agent's queue does. */
async function deliver(change: Planned, streams: Map<string, IngestStream>): Promise<void> {
  for (;;) {
    let stream = streams.get(change.agent);
    if (!stream) {
      stream = new IngestStream(stack.agentEndpoint(change.agent));
      streams.set(change.agent, stream);
    }
    const message = buildPasswordChange(
      stack.recipient as RecipientPublicKey,
      {
        changeId: change.changeId,
        accountName: change.user.userPrincipalName.split("@")[0]!,
        userPrincipalName: change.user.userPrincipalName,
        mail: change.user.mail,
        objectGuid: Buffer.from(change.user.onPremisesImmutableId, "base64"),
        changedAt: change.changedAt,
        domainController: `${change.agent}.contoso.example`,
        agentSequence: change.sequence,
      },
      Buffer.from(change.password, "utf8"),
    );
    const acked = await Promise.race([stream.send(message).then(() => true), sleep(15_000).then(() => false)]).catch(() => false);
    if (acked) return;
    // Many deliveries share the stream: the first to see it fail replaces it.
    if (streams.get(change.agent) === stream) {
      streams.delete(change.agent);
      void stream.close().catch(() => {});
    }
    await sleep(500);
  }
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? filesUnder(full) : [full];
  });
}

describe("chaos drill", () => {
  it("under kill -9 of every service, PostgreSQL crashes and Graph faults the newest password wins, nothing is lost and the log tells the truth", async () => {
    const control = sandboxControl(stack.sandboxUrl!, readFileSync(stack.pki.ca.cert));
    await control.faults({ reset: true, latencyMs: Array.from({ length: 400 }, () => Math.floor(random() * 600)) });
    const before = (await control.stats()).counters;
    const t0 = Date.now() - 60_000;
    const planned: Planned[] = Array.from({ length: CHANGES }, (_, i) => ({
      changeId: randomUUID(),
      user: users[Math.floor(random() * users.length)]!,
      password: `Pw-${canary}-${i}-aB1!`,
      changedAt: new Date(t0 + i * 50),
      agent: i % 2 ? "dc01" : "dc02",
      sequence: BigInt(i),
    }));

    // Two DCs deliver in order of capture, each at its own pace.
    const pushing = (async () => {
      const streams = new Map<string, IngestStream>();
      const started = Date.now();
      const inFlight: Promise<void>[] = [];
      for (let i = 0; i < planned.length; i++) {
        const wait = started + (i * 1000) / PUSH_RATE_PER_SECOND - Date.now();
        if (wait > 0) await sleep(wait);
        inFlight.push(deliver(planned[i]!, streams));
      }
      await Promise.all(inFlight);
      for (const stream of streams.values()) await stream.close().catch(() => {});
    })();

    // Every service instance may be killed; a crash we did not cause is a failure.
    const killedByUs = new WeakSet<object>();
    const selfExits: string[] = [];
    const watch = (name: string) => {
      const service = stack.services.get(name)!;
      void service.exited.then((code) => {
        if (!killedByUs.has(service)) selfExits.push(`${name} exited by itself (${code})`);
      });
    };
    for (const name of stack.services.keys()) watch(name);

    const chaosUntil = Date.now() + (CHANGES / PUSH_RATE_PER_SECOND) * 1000;
    const postgresCrashes = [0.3, 0.65].map((f) => Date.now() + f * (chaosUntil - Date.now()));
    const restarting = new Map<string, Promise<void>>();
    let kills = 0;
    let crashes = 0;
    while (Date.now() < chaosUntil) {
      await sleep(1000 + random() * 2000);
      if (postgresCrashes.length > 0 && Date.now() >= postgresCrashes[0]!) {
        postgresCrashes.shift();
        await stack.crashPostgres(300 + random() * 700);
        crashes++;
        continue;
      }
      if (random() < 0.25) await control.faults({ fail: { count: 1 + Math.floor(random() * 4), status: 503, writesOnly: true } });
      const victim = pick(VICTIMS.filter((v) => !restarting.has(v)));
      if (!victim) continue;
      const service = stack.services.get(victim)!;
      killedByUs.add(service);
      await stack.kill(victim, "SIGKILL");
      kills++;
      restarting.set(
        victim,
        (async () => {
          await sleep(200 + random() * 1500);
          // A start while PostgreSQL is down fails (a supervisor would start it again): retry.
          // Starting compiles TypeScript at run time, which a loaded machine makes slow.
          for (let attempt = 1; ; attempt++) {
            try {
              await stack.restart(victim, { readyTimeoutMs: 180_000 });
              break;
            } catch (err) {
              if (attempt >= 5) throw err;
              await sleep(1000);
            }
          }
          watch(victim);
          restarting.delete(victim);
        })(),
      );
    }
    await Promise.all(restarting.values());
    await pushing;

    const ids = new Set(planned.map((p) => p.changeId));
    const outcomes = await waitForOutcomes(log, ids, { timeoutMs: 240_000 });
    const after = (await control.stats()).counters;

    // Nothing lost; exactly one outcome and one shredding per change; no secret left.
    const streams = planned.map((p) => `change-${p.changeId}`);
    const perStream = await sql<{ stream_id: string; terminal: string; shredded: string }>`
      SELECT stream_id,
             count(*) FILTER (WHERE type IN ('PasswordSet', 'ResetFailed', 'Superseded', 'ResolutionFailed')) AS terminal,
             count(*) FILTER (WHERE type = 'SecretShredded') AS shredded
        FROM events WHERE stream_id = ANY(${streams}) GROUP BY stream_id`.execute(log.db);
    const lost = planned.length - outcomes.size;
    const secretsLeft = await sql<{ n: string }>`SELECT count(*) AS n FROM sealed_secrets WHERE change_id = ANY(${[...ids]})`.execute(log.db);

    // The newest change of every user is recorded as set, and its password is the one that signs in.
    const newest = new Map<string, Planned>();
    for (const change of planned) newest.set(change.user.id, change);
    const wrong: string[] = [];
    for (const change of newest.values()) {
      const recorded = outcomes.get(change.changeId)?.type;
      const signsIn = await control.signIn(change.user.userPrincipalName, change.password);
      if (recorded !== "PasswordSet" || !signsIn) wrong.push(`${change.user.userPrincipalName}: newest change ${recorded}, signs in ${signsIn}`);
    }
    const set = [...outcomes.values()].filter((o) => o.type === "PasswordSet").length;
    const writes = (after.writes ?? 0) - (before.writes ?? 0);
    const budget429s = (after.throttled ?? 0) - (before.throttled ?? 0);
    console.log(
      JSON.stringify({
        chaos: { seed, changes: planned.length, users: users.length, kills, postgresCrashes: crashes },
        outcomes: Object.fromEntries(
          ["PasswordSet", "Superseded", "ResetFailed", "ResolutionFailed"].map((t) => [t, [...outcomes.values()].filter((o) => o.type === t).length]),
        ),
        graphWrites: writes,
        graphWritesPerPasswordSet: set ? Number((writes / set).toFixed(2)) : 0,
        budget429s,
        injected503s: (after.injectedFailures ?? 0) - (before.injectedFailures ?? 0),
        lost,
        wrongPasswords: wrong.length,
      }),
    );
    expect(lost).toBe(0);
    expect(perStream.rows.filter((r) => r.terminal !== "1" || r.shredded !== "1")).toEqual([]);
    expect(Number(secretsLeft.rows[0]?.n)).toBe(0);
    expect(wrong).toEqual([]);
    // Graph's own budget answered no 429: ours kept every replica, and every restart, under it.
    expect(budget429s).toBe(0);

    // No plaintext password in the database, the logs or the emails.
    const dump = await sql<{ t: string }>`
      SELECT string_agg(t, E'\\n') AS t FROM (
        SELECT data::text || metadata::text AS t FROM events
        UNION ALL SELECT row_to_json(s)::text FROM executor_user_state s
        UNION ALL SELECT row_to_json(a)::text FROM graph_write_attempts a) x`.execute(log.db);
    expect(dump.rows[0]!.t).not.toContain(canary);
    for (const file of [...filesUnder(stack.logsDir), ...filesUnder(stack.mailDir)])
      expect({ file, leaked: readFileSync(file, "latin1").includes(canary) }).toEqual({ file, leaked: false });
    expect(selfExits).toEqual([]);
  }, 600_000);
});
