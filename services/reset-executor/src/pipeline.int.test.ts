import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { buildPasswordChange } from "@pwsync/agent-link";
import { generateRecipientKeyPair, loadRecipientKeyPair, loadRecipientPublicKey } from "@pwsync/crypto";
import { changeStreamId, isChangeOutcome, openEventLog, readStream, type EventLog, type Processor } from "@pwsync/eventlog";
import { createGraphClient, type GraphClient } from "@pwsync/graph";
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

// Resolver and reset-executor against real Postgres and the sandbox tenant through the real
// Graph SDK and @azure/identity; changes enter exactly as ingest commits them.

const tenantId = "00000000-0000-0000-0000-00000000cafe";
const clientId = "00000000-0000-0000-0000-0000000a9910";
const clientSecret = `secret-${randomUUID()}`;
const canaryRoot = `Pipe-Canary-${randomUUID().slice(0, 8)}`;
const password = (n: number) => `${canaryRoot}-${n}!Aa`;

const users = Array.from({ length: 12 }, (_, i) => ({
  id: `u-${i}`,
  userPrincipalName: `user${i}@contoso.example`,
  mail: `user${i}@contoso.example`,
  onPremisesImmutableId: Buffer.alloc(16, i + 1).toString("base64"),
  accountEnabled: true,
}));
users.push({
  id: "u-synced",
  userPrincipalName: "synced@contoso.example",
  mail: "synced@contoso.example",
  onPremisesImmutableId: Buffer.alloc(16, 99).toString("base64"),
  accountEnabled: true,
  onPremisesSyncEnabled: true,
} as never);

let log: EventLog;
let sandbox: SandboxTenantHandle;
let graph: GraphClient;
let control: ReturnType<typeof sandboxControl>;
let resolver: Processor;
let executor: Processor;
const shutdown = new AbortController();
const keys = generateRecipientKeyPair();
const recipient = loadRecipientPublicKey(keys.publicPem);
const logLines: string[] = [];
const logger = createLogger({
  service: "pipeline-test",
  destination: new Writable({
    write(chunk, _e, cb) {
      logLines.push(String(chunk));
      cb();
    },
  }),
});

beforeAll(async () => {
  const pkiDir = mkdtempSync(path.join(tmpdir(), "pipeline-pki-"));
  const pki = await ensureDevPki(pkiDir);
  const caPem = readFileSync(pki.ca.cert, "utf8");
  sandbox = await startSandboxTenant({
    tls: { cert: readFileSync(pki.server.cert, "utf8"), key: readFileSync(pki.server.key, "utf8") },
    tenantId,
    apps: [{ clientId, clientSecret }],
    users: users as never,
    scryptCost: 1024,
  });
  control = sandboxControl(sandbox.url, caPem);
  graph = await createGraphClient({ tenantId, clientId, clientSecret, authorityHost: sandbox.url, graphBaseUrl: sandbox.url, caPem });
  log = await openEventLog(await createTestDatabase("pipeline"));
  const keyPair = loadRecipientKeyPair(keys.privatePem);
  const config = executorSection.parse({ keysDir: "/unused", retryLimit: 3, backoff: { baseMs: 20, maxMs: 100 }, minPasswordLength: 4 });
  resolver = await startResolver({ log, graph, logger, matchOrder: ["immutableId", "userPrincipalName", "mail"] });
  executor = await startExecutor({
    log,
    graph,
    logger,
    keys: new Map([[keyPair.keyId, keyPair]]),
    config,
    limiter: new SlidingWindowLimiter(1000, 1000),
    requestTimeoutMs: 10_000,
    signal: shutdown.signal,
  });
});

afterAll(async () => {
  shutdown.abort();
  await resolver?.stop();
  await executor?.stop();
  graph?.close();
  await sandbox?.close();
  await log?.close();
});

async function capture(userIndex: number | "synced", secret: string, changedAt = new Date()): Promise<string> {
  const user = typeof userIndex === "number" ? users[userIndex]! : users.at(-1)!;
  const changeId = randomUUID();
  const message = buildPasswordChange(
    recipient,
    {
      changeId,
      accountName: user.userPrincipalName.split("@")[0]!,
      objectGuid: Buffer.from(user.onPremisesImmutableId, "base64"),
      userPrincipalName: user.userPrincipalName,
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

async function terminalTimeline(changeId: string): Promise<string[]> {
  return eventually(`change ${changeId} to finish`, async () => {
    const types = (await readStream(log.db, changeStreamId(changeId))).map((e) => e.type);
    return types.some(isChangeOutcome) && types.includes("SecretShredded") ? types : undefined;
  });
}

async function secretGone(changeId: string): Promise<boolean> {
  const row = await log.db.selectFrom("sealed_secrets").select("change_id").where("change_id", "=", changeId).executeTakeFirst();
  return row === undefined;
}

describe("resolver + reset-executor against the sandbox tenant", () => {
  it("sets the password in Entra: the sandbox sign-in accepts the new one and the secret is shredded", async () => {
    const changeId = await capture(0, password(0));
    expect(await terminalTimeline(changeId)).toEqual(["ChangeCaptured", "UserResolved", "PasswordSet", "SecretShredded"]);
    expect(await control.signIn(users[0]!.userPrincipalName, password(0))).toBe(true);
    expect(await control.signIn(users[0]!.userPrincipalName, "Wrong-Password-1")).toBe(false);
    expect(await secretGone(changeId)).toBe(true);
    const set = (await readStream(log.db, `change-${changeId}`)).find((e) => e.type === "PasswordSet")!;
    expect(set.data).toMatchObject({ entraUserId: "u-0", attempts: 1 });
    expect((set.data as { timing: { totalMs: number } }).timing.totalMs).toBeGreaterThanOrEqual(0);
  });

  it("fails fast, before Graph, a password that breaks Entra's rules", async () => {
    const before = (await control.stats()).counters.writes;
    const changeId = await capture(1, "abc");
    expect(await terminalTimeline(changeId)).toEqual(["ChangeCaptured", "UserResolved", "ResetFailed", "SecretShredded"]);
    const failed = (await readStream(log.db, `change-${changeId}`)).find((e) => e.type === "ResetFailed")!;
    expect(failed.data).toMatchObject({ reason: "RESET_FAILURE_REASON_COMPLEXITY", detail: "the new password has 3 characters; Entra ID requires at least 4" });
    expect((await control.stats()).counters.writes).toBe(before);
  });

  it("reports Graph's own complexity refusal as a complexity failure", async () => {
    const changeId = await capture(2, "Ab1!x");
    await terminalTimeline(changeId);
    const failed = (await readStream(log.db, `change-${changeId}`)).find((e) => e.type === "ResetFailed")!;
    expect(failed.data).toMatchObject({ reason: "RESET_FAILURE_REASON_COMPLEXITY", httpStatus: 400 });
    expect((failed.data as { detail: string }).detail).toMatch(/not complex enough/);
  });

  it("retries through a 429 storm honouring Retry-After, then sets the password", async () => {
    await control.faults({ reset: true, fail: { count: 2, status: 429, retryAfterSeconds: 1, writesOnly: true } });
    const changeId = await capture(3, password(3));
    expect(await terminalTimeline(changeId)).toEqual(["ChangeCaptured", "UserResolved", "RetryScheduled", "RetryScheduled", "PasswordSet", "SecretShredded"]);
    const events = await readStream(log.db, `change-${changeId}`);
    const retries = events.filter((e) => e.type === "RetryScheduled").map((e) => e.data as { httpStatus: number; fromRetryAfter: boolean; delayMs: number });
    expect(retries).toEqual([
      expect.objectContaining({ httpStatus: 429, fromRetryAfter: true, delayMs: 1000 }),
      expect.objectContaining({ httpStatus: 429, fromRetryAfter: true, delayMs: 1000 }),
    ]);
    expect(events.find((e) => e.type === "PasswordSet")!.data).toMatchObject({ attempts: 3 });
    expect(await control.signIn(users[3]!.userPrincipalName, password(3))).toBe(true);
  });

  it("retries 5xx with backoff, then sets the password", async () => {
    await control.faults({ reset: true, fail: { count: 2, status: 503, writesOnly: true } });
    const changeId = await capture(4, password(4));
    expect(await terminalTimeline(changeId)).toEqual(["ChangeCaptured", "UserResolved", "RetryScheduled", "RetryScheduled", "PasswordSet", "SecretShredded"]);
    expect(await control.signIn(users[4]!.userPrincipalName, password(4))).toBe(true);
  });

  it("fails for good once the retry limit is spent", async () => {
    await control.faults({ reset: true, fail: { count: 10, status: 503, writesOnly: true } });
    const changeId = await capture(5, password(5));
    expect(await terminalTimeline(changeId)).toEqual(["ChangeCaptured", "UserResolved", "RetryScheduled", "RetryScheduled", "ResetFailed", "SecretShredded"]);
    const failed = (await readStream(log.db, `change-${changeId}`)).find((e) => e.type === "ResetFailed")!;
    expect(failed.data).toMatchObject({ reason: "RESET_FAILURE_REASON_RETRIES_EXHAUSTED", attempts: 3, httpStatus: 503 });
    expect(await control.signIn(users[5]!.userPrincipalName, password(5))).toBe(false);
    await control.faults({ reset: true });
  });

  it("lets the newest change win when an older one arrives later (another DC, out of order)", async () => {
    const newer = await capture(6, password(61), new Date(Date.now() - 1_000));
    await terminalTimeline(newer);
    const older = await capture(6, password(60), new Date(Date.now() - 60_000));
    expect(await terminalTimeline(older)).toEqual(["ChangeCaptured", "UserResolved", "Superseded", "SecretShredded"]);
    const superseded = (await readStream(log.db, `change-${older}`)).find((e) => e.type === "Superseded")!;
    expect(superseded.data).toMatchObject({ supersededByChangeId: newer });
    expect(await control.signIn(users[6]!.userPrincipalName, password(61))).toBe(true);
    expect(await control.signIn(users[6]!.userPrincipalName, password(60))).toBe(false);
  });

  it("remembers a change that ended Superseded, so a still older one delivered later is superseded too", async () => {
    const t = Date.now();
    // N is throttled once; while it waits, an older O and a newest-but-too-weak M arrive.
    await control.faults({ reset: true, fail: { count: 1, status: 429, retryAfterSeconds: 6, writesOnly: true } });
    const n = await capture(8, password(81), new Date(t - 2_000));
    await eventually("N is waiting to retry", async () => (await readStream(log.db, `change-${n}`)).some((e) => e.type === "RetryScheduled"));
    const o = await capture(8, password(80), new Date(t - 60_000));
    const m = await capture(8, "abc", new Date(t));
    for (const id of [o, m]) await eventually(`${id} resolved`, async () => (await readStream(log.db, `change-${id}`)).some((e) => e.type === "UserResolved"));
    // The scenario needs O and M queued while N still waits for its retry.
    expect((await readStream(log.db, `change-${n}`)).map((e) => e.type)).not.toContain("SecretShredded");
    expect((await terminalTimeline(n)).at(-2)).toBe("Superseded");
    expect(await terminalTimeline(o)).toEqual(["ChangeCaptured", "UserResolved", "Superseded", "SecretShredded"]);
    expect((await terminalTimeline(m)).at(-2)).toBe("ResetFailed");
    expect(await control.signIn(users[8]!.userPrincipalName, password(80))).toBe(false);
  });

  it("applies two changes for one user in order when they arrive in order", async () => {
    const first = await capture(7, password(70), new Date(Date.now() - 5_000));
    // In order at the executor: the resolver handles the two streams concurrently otherwise.
    await eventually("first resolved", async () => (await readStream(log.db, `change-${first}`)).some((e) => e.type === "UserResolved"));
    const second = await capture(7, password(71), new Date());
    expect((await terminalTimeline(first)).at(-2)).toBe("PasswordSet");
    expect((await terminalTimeline(second)).at(-2)).toBe("PasswordSet");
    expect(await control.signIn(users[7]!.userPrincipalName, password(71))).toBe(true);
  });

  it("ends a user synced by Entra Connect in ResolutionFailed and shreds its secret", async () => {
    const changeId = await capture("synced", password(99));
    expect(await terminalTimeline(changeId)).toEqual(["ChangeCaptured", "ResolutionFailed", "SecretShredded"]);
    expect(await secretGone(changeId)).toBe(true);
  });

  it("given a burst for ten users while Graph is slow, then lookups and writes share Graph batches and every change is done as alone", async () => {
    const before = (await control.stats()).batches;
    await control.faults({ latencyMs: 100 });
    try {
      const ids = await Promise.all([1, 2, 3, 4, 5, 6, 8, 9, 10, 11].map((i) => capture(i, password(200 + i))));
      for (const id of ids) expect(await terminalTimeline(id)).toEqual(["ChangeCaptured", "UserResolved", "PasswordSet", "SecretShredded"]);
    } finally {
      await control.faults({ reset: true });
    }
    for (const i of [1, 2, 3, 4, 5, 6, 8, 9, 10, 11]) expect(await control.signIn(users[i]!.userPrincipalName, password(200 + i))).toBe(true);
    const after = (await control.stats()).batches;
    expect(after.requests).toBeGreaterThan(before.requests);
    expect(after.subRequests - before.subRequests).toBeGreaterThan(after.requests - before.requests);
  });

  it("leaves no plaintext password in the database, the logs or the sandbox state", async () => {
    const dump = await sql<{ t: string }>`
      SELECT string_agg(t, E'\n') AS t FROM (
        SELECT data::text || metadata::text AS t FROM events
        UNION ALL SELECT encode(envelope, 'escape') FROM sealed_secrets
        UNION ALL SELECT row_to_json(s)::text FROM executor_user_state s) x`.execute(log.db);
    expect(dump.rows[0]!.t.length).toBeGreaterThan(0);
    expect(dump.rows[0]!.t).not.toContain(canaryRoot);
    expect(logLines.join("")).not.toContain(canaryRoot);
    expect(JSON.stringify(await control.state())).not.toContain(canaryRoot);
  });
});
