import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { buildPasswordChange } from "@pwsync/agent-link";
import { generateRecipientKeyPair, loadRecipientKeyPair, loadRecipientPublicKey } from "@pwsync/crypto";
import { openEventLog, readStream, type EventLog, type Processor } from "@pwsync/eventlog";
import { createGraphClient, GraphBatcher, type GraphClient } from "@pwsync/graph";
import { commitChanges, validateChange } from "@pwsync/ingest";
import { createLogger } from "@pwsync/log";
import { ensureDevPki } from "@pwsync/pki";
import { startResolver } from "@pwsync/resolver";
import { sandboxControl, startSandboxTenant, type SandboxTenantHandle } from "@pwsync/sandbox-tenant";
import { createTestDatabase, eventually } from "@pwsync/testkit";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { executorSection } from "./config.js";
import { startExecutor } from "./processor.js";
import { SlidingWindowLimiter } from "./rate-limiter.js";

// Two reset-executor members against real Postgres and the sandbox tenant. Graph has no
// conditional write on passwordProfile, so a PATCH already sent cannot be recalled: these tests
// hold one in the sandbox while its sender loses its partition, and check that the newer
// password still ends up in Entra.

const tenantId = "00000000-0000-0000-0000-00000000fe0c";
const clientId = "00000000-0000-0000-0000-0000000fe0c1";
const clientSecret = `secret-${randomUUID()}`;
const canaryRoot = `Fence-Canary-${randomUUID().slice(0, 8)}`;
const password = (n: number) => `${canaryRoot}-${n}!Aa`;
const sandboxUser = (id: string, n: number) => ({
  id,
  userPrincipalName: `${id}@contoso.example`,
  mail: `${id}@contoso.example`,
  onPremisesImmutableId: Buffer.alloc(16, n).toString("base64"),
  accountEnabled: true,
});
const user = sandboxUser("u-fenced", 7);
// Two users whose changes fall in one partition (same worker, same batch).
const slowUser = sandboxUser("u-batch-0", 8);
const fastUser = sandboxUser("u-batch-8", 9);

let connectionString: string;
let log: EventLog;
let sandbox: SandboxTenantHandle;
let caPem: string;
let control: ReturnType<typeof sandboxControl>;
const running: Array<{ stop(): Promise<void> }> = [];
const graphs: GraphClient[] = [];
const shutdown = new AbortController();
const keys = generateRecipientKeyPair();
const recipient = loadRecipientPublicKey(keys.publicPem);
const logLines: string[] = [];
const logger = createLogger({
  service: "fencing-test",
  destination: new Writable({
    write(chunk, _e, cb) {
      logLines.push(String(chunk));
      cb();
    },
  }),
});

async function graphClient(): Promise<GraphClient> {
  const graph = await createGraphClient({ tenantId, clientId, clientSecret, authorityHost: sandbox.url, graphBaseUrl: sandbox.url, caPem });
  graphs.push(graph);
  return graph;
}

/** One reset-executor member with its own pool and control connection, as a replica has. */
async function executorMember(
  options: { maxBatchesInFlight?: number; maxSendDelayMs?: number } = {},
): Promise<{ processor: Processor; log: EventLog; stop(): Promise<void> }> {
  const ownLog = await openEventLog(connectionString, { migrate: false });
  const keyPair = loadRecipientKeyPair(keys.privatePem);
  const graph = await graphClient();
  const processor = await startExecutor({
    log: ownLog,
    graph,
    ...(options.maxBatchesInFlight ? { writes: new GraphBatcher(graph, { maxBatchesInFlight: options.maxBatchesInFlight }) } : {}),
    logger,
    keys: new Map([[keyPair.keyId, keyPair]]),
    config: executorSection.parse({
      keysDir: "/unused",
      retryLimit: 3,
      backoff: { baseMs: 20, maxMs: 100 },
      minPasswordLength: 4,
      fencing: { maxSendDelayMs: options.maxSendDelayMs ?? 500, graceMs: 1000 },
    }),
    limiter: new SlidingWindowLimiter(1000, 1000),
    requestTimeoutMs: 10_000,
    signal: shutdown.signal,
  });
  const stop = async () => (await processor.stop(), await ownLog.close());
  running.push({ stop });
  return { processor, log: ownLog, stop };
}

beforeAll(async () => {
  const pki = await ensureDevPki(mkdtempSync(path.join(tmpdir(), "fencing-pki-")));
  caPem = readFileSync(pki.ca.cert, "utf8");
  sandbox = await startSandboxTenant({
    tls: { cert: readFileSync(pki.server.cert, "utf8"), key: readFileSync(pki.server.key, "utf8") },
    tenantId,
    apps: [{ clientId, clientSecret }],
    users: [user, slowUser, fastUser] as never,
    scryptCost: 1024,
  });
  control = sandboxControl(sandbox.url, caPem);
  connectionString = await createTestDatabase("fencing");
  log = await openEventLog(connectionString);
  const resolver = await startResolver({ log, graph: await graphClient(), logger, matchOrder: ["immutableId"] });
  running.push(resolver);
});

afterAll(async () => {
  shutdown.abort();
  for (const r of running.reverse()) await r.stop().catch(() => {});
  for (const g of graphs) g.close();
  await sandbox?.close();
  await log?.close();
});

async function capture(secret: string, changedAt: Date, who = user): Promise<string> {
  const changeId = randomUUID();
  const message = buildPasswordChange(
    recipient,
    {
      changeId,
      accountName: who.id,
      objectGuid: Buffer.from(who.onPremisesImmutableId, "base64"),
      userPrincipalName: who.userPrincipalName,
      changedAt,
      domainController: "dc01",
    },
    Buffer.from(secret),
  );
  const verdict = validateChange(message, new Set([recipient.keyId]), new Date());
  if (!verdict.ok) throw new Error(verdict.message);
  const { toBinary } = await import("@bufbuild/protobuf");
  const { SealedSecretSchema } = await import("@pwsync/proto");
  await commitChanges(log, [
    {
      change: verdict.change,
      sealedEnvelope: toBinary(SealedSecretSchema, message.sealedPassword!),
      agent: { agentId: "dc01", fingerprint256: "" },
      scope: [],
      receivedAt: new Date(),
    },
  ]);
  return changeId;
}

async function outcome(changeId: string): Promise<string> {
  return eventually(
    `change ${changeId} to finish`,
    async () => (await readStream(log.db, `change-${changeId}`)).map((e) => e.type).find((t) => ["PasswordSet", "ResetFailed", "Superseded"].includes(t)),
    60_000,
  );
}

describe("fencing the reset-executor", () => {
  it("a PATCH still in flight when its sender lost the partition cannot put the older password over the newer one", async () => {
    const t = Date.now();
    const a = await capture(password(1), new Date(t - 10_000));
    await eventually("A resolved", async () => (await readStream(log.db, `change-${a}`)).some((e) => e.type === "UserResolved"));
    // X's PATCH of A is held 6 s by Graph, and applied then although X is long gone.
    await control.faults({ reset: true, latencyMs: [6000] });
    const writesBefore = (await control.stats()).counters.writes;
    const x = await executorMember();
    // The sandbox took the request (its latency queue is consumed) and will apply it.
    await eventually(
      "Graph holds X's PATCH of A",
      async () => ((await control.stats()) as unknown as { faults: { queuedLatencies: number } }).faults.queuedLatencies === 0,
      30_000,
    );
    // X's control connection drops (a network blip, a failover): X's locks are gone.
    await sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pwsync-reset-executor-control' AND datname = current_database()`.execute(
      log.db,
    );
    await x.processor.stop();

    const b = await capture(password(2), new Date(t - 5_000));
    const y = await executorMember();
    expect(await outcome(a)).toBe("PasswordSet");
    expect(await outcome(b)).toBe("PasswordSet");
    const writes = async () => ((await control.stats()).counters.writes ?? 0) - (writesBefore ?? 0);
    await eventually("X's held request was applied", async () => (await writes()) >= 3, 30_000);
    // X's held request landed in between; B, written after it, is what Entra holds.
    expect(await control.signIn(user.userPrincipalName, password(2))).toBe(true);
    expect(await control.signIn(user.userPrincipalName, password(1))).toBe(false);
    // X's held write, Y's A once more (X's answer never came, so Y re-asserts it), and B once.
    expect(await writes()).toBe(3);
    expect(logLines.some((l) => l.includes("may still be in flight; waiting it out"))).toBe(true);
    expect(logLines.join("")).not.toContain(canaryRoot);
    await y.stop();
  });

  it("a finished write commits at once: it does not wait for a slower change of another user in the same batch", async () => {
    await control.faults({ reset: true });
    const t = Date.now();
    // The slow user's change must first wait out a write of an earlier change that may still be in flight.
    await sql`INSERT INTO graph_write_attempts (attempt_id, entra_user_id, change_id, expires_at)
              VALUES (gen_random_uuid(), ${slowUser.id}, 'an-earlier-change', now() + interval '20 seconds')`.execute(log.db);
    const slow = await capture(password(11), new Date(t - 2_000), slowUser);
    const fast = await capture(password(12), new Date(t - 1_000), fastUser);
    for (const id of [slow, fast])
      await eventually(`${id} resolved`, async () => (await readStream(log.db, `change-${id}`)).some((e) => e.type === "UserResolved"));
    // Both are read in one batch, the slow one first.
    const member = await executorMember();
    expect(await outcome(fast)).toBe("PasswordSet");
    const slowSoFar = (await readStream(log.db, `change-${slow}`)).map((e) => e.type);
    expect(slowSoFar).not.toContain("PasswordSet");
    expect(await outcome(slow)).toBe("PasswordSet");
    expect(await control.signIn(fastUser.userPrincipalName, password(12))).toBe(true);
    expect(await control.signIn(slowUser.userPrincipalName, password(11))).toBe(true);
    await member.stop();
  });

  it("a JSON batch of writes still in flight when its sender lost the partition cannot put older passwords over newer ones", async () => {
    await control.faults({ reset: true });
    const t = Date.now();
    const c0 = await capture(password(20), new Date(t - 11_000), user);
    const a1 = await capture(password(21), new Date(t - 10_000), slowUser);
    const a2 = await capture(password(22), new Date(t - 9_000), fastUser);
    for (const id of [c0, a1, a2])
      await eventually(`${id} resolved`, async () => (await readStream(log.db, `change-${id}`)).some((e) => e.type === "UserResolved"));
    // X may have one Graph request in flight: the first of the three writes leaves alone and is
    // held 3 s, the other two wait for it and then leave together as one $batch, each of its
    // writes held 6 s by Graph and applied then, although X is long gone.
    await control.faults({ reset: true, latencyMs: [3000, 6000, 6000] });
    const before = await control.stats();
    const x = await executorMember({ maxBatchesInFlight: 1, maxSendDelayMs: 5000 });
    await eventually(
      "Graph holds X's lone write and both writes of its batch",
      async () => ((await control.stats()) as unknown as { faults: { queuedLatencies: number } }).faults.queuedLatencies === 0,
      30_000,
    );
    const held = await control.stats();
    expect(held.batches.requests - before.batches.requests).toBe(1);
    expect(held.batches.subRequests - before.batches.subRequests).toBe(2);
    await sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pwsync-reset-executor-control' AND datname = current_database()`.execute(
      log.db,
    );
    await x.processor.stop();

    const b1 = await capture(password(23), new Date(t - 5_000), slowUser);
    const b2 = await capture(password(24), new Date(t - 4_000), fastUser);
    const y = await executorMember();
    for (const id of [c0, a1, a2, b1, b2]) expect(await outcome(id)).toBe("PasswordSet");
    const writes = async () => ((await control.stats()).counters.writes ?? 0) - (before.counters.writes ?? 0);
    // Every write X sent has landed by now (a sign-in check before that would prove nothing).
    await eventually("Graph has applied X's held writes", async () => (await control.stats()).graphRequestsInFlight === 0, 30_000);
    // X's three writes; Y's A1 and A2 once more (X's answers never came) and B1 and B2 once each;
    // C0 once more only if X's outcome for its lone write had not committed when it lost.
    expect(await writes()).toBeGreaterThanOrEqual(7);
    expect(await writes()).toBeLessThanOrEqual(8);
    expect(logLines.some((l) => l.includes("may still be in flight; waiting it out"))).toBe(true);
    expect(await control.signIn(slowUser.userPrincipalName, password(23))).toBe(true);
    expect(await control.signIn(fastUser.userPrincipalName, password(24))).toBe(true);
    expect(await control.signIn(user.userPrincipalName, password(20))).toBe(true);
    expect(await control.signIn(slowUser.userPrincipalName, password(21))).toBe(false);
    expect(await control.signIn(fastUser.userPrincipalName, password(22))).toBe(false);
    expect(logLines.join("")).not.toContain(canaryRoot);
    await y.stop();
  });
});
