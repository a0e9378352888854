import { toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { buildPasswordChange } from "@pwsync/agent-link";
import { generateRecipientKeyPair, loadRecipientKeyPair, loadRecipientPublicKey } from "@pwsync/crypto";
import { appendToStream, changeStreamId, loadSealedSecret, openEventLog, readStream, type EventLog, type Processor } from "@pwsync/eventlog";
import { createGraphClient, type GraphClient } from "@pwsync/graph";
import { commitChanges, validateChange } from "@pwsync/ingest";
import { createLogger } from "@pwsync/log";
import { ensureDevPki } from "@pwsync/pki";
import { newEvent, SealedSecretSchema } from "@pwsync/proto";
import { executorSection, reapExpiredSecrets, SlidingWindowLimiter, startExecutor } from "@pwsync/reset-executor";
import { startResolver } from "@pwsync/resolver";
import { sandboxControl, startSandboxTenant, type SandboxTenantHandle } from "@pwsync/sandbox-tenant";
import { createTestDatabase, eventually } from "@pwsync/testkit";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTelemetry, type Telemetry } from "@pwsync/telemetry";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import { requestRetry } from "./retry.js";

// A failed change keeps its sealed password for the retry window; an admin's RetryRequested
// runs it through the real resolver and reset-executor again; the reaper closes the window.

const tenantId = "00000000-0000-0000-0000-0000000e7e01";
const clientId = "00000000-0000-0000-0000-0000000e7e02";
const clientSecret = `secret-${randomUUID()}`;
const users = [0, 1].map((i) => ({
  id: `u-${i}`,
  userPrincipalName: `retry${i}@contoso.example`,
  mail: `retry${i}@contoso.example`,
  onPremisesImmutableId: Buffer.alloc(16, i + 7).toString("base64"),
  accountEnabled: true,
  onPremisesSyncEnabled: null,
  adminProtected: false,
}));
const newPassword = (n: number) => `Retry-Canary-${randomUUID().slice(0, 8)}-${n}!Aa`;

let log: EventLog;
let sandbox: SandboxTenantHandle;
let graph: GraphClient;
let control: ReturnType<typeof sandboxControl>;
let resolver: Processor;
let executor: Processor;
const shutdown = new AbortController();
const keys = generateRecipientKeyPair();
const recipient = loadRecipientPublicKey(keys.publicPem);
const lines: string[] = [];
const logger = createLogger({ service: "retry-test", destination: new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }) });

const spans = new InMemorySpanExporter();
let telemetry: Telemetry;

beforeAll(async () => {
  telemetry = await startTelemetry({ serviceName: "retry-test", spanExporter: spans });
  const pki = await ensureDevPki(mkdtempSync(path.join(tmpdir(), "retry-pki-")));
  const caPem = readFileSync(pki.ca.cert, "utf8");
  sandbox = await startSandboxTenant({
    tls: { cert: readFileSync(pki.server.cert, "utf8"), key: readFileSync(pki.server.key, "utf8") },
    tenantId,
    apps: [{ clientId, clientSecret }],
    users,
    scryptCost: 1024,
  });
  control = sandboxControl(sandbox.url, caPem);
  graph = await createGraphClient({ tenantId, clientId, clientSecret, authorityHost: sandbox.url, graphBaseUrl: sandbox.url, caPem });
  log = await openEventLog(await createTestDatabase("retry"));
  const keyPair = loadRecipientKeyPair(keys.privatePem);
  resolver = await startResolver({ log, graph, logger, matchOrder: ["immutableId"], retainSecretOnFailure: true });
  executor = await startExecutor({
    log,
    graph,
    logger,
    keys: new Map([[keyPair.keyId, keyPair]]),
    config: executorSection.parse({ keysDir: "/unused", retryLimit: 1, backoff: { baseMs: 20, maxMs: 100 }, minPasswordLength: 4 }),
    limiter: new SlidingWindowLimiter(1000, 1000),
    requestTimeoutMs: 10_000,
    signal: shutdown.signal,
    retainSecretOnFailure: true,
  });
});

afterAll(async () => {
  shutdown.abort();
  await resolver?.stop();
  await executor?.stop();
  graph?.close();
  await sandbox?.close();
  await log?.close();
  await telemetry?.shutdown();
});

async function capture(user: (typeof users)[number], secret: string): Promise<string> {
  const changeId = randomUUID();
  const message = buildPasswordChange(
    recipient,
    {
      changeId,
      accountName: user.userPrincipalName.split("@")[0]!,
      objectGuid: Buffer.from(user.onPremisesImmutableId, "base64"),
      userPrincipalName: user.userPrincipalName,
      changedAt: new Date(),
      domainController: "dc01",
      traceparent: `00-${randomBytes(16).toString("hex")}-${randomBytes(8).toString("hex")}-01`,
    },
    Buffer.from(secret),
  );
  const verdict = validateChange(message, new Set([recipient.keyId]), new Date());
  if (!verdict.ok) throw new Error(verdict.message);
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

const types = async (changeId: string) => (await readStream(log.db, `change-${changeId}`)).map((e) => e.type);
const until = (changeId: string, last: string) =>
  eventually(`${changeId} to reach ${last}`, async () => ((await types(changeId)).at(-1) === last ? types(changeId) : undefined));

describe("retry of a failed change", () => {
  it("keeps the secret on failure; RetryRequested re-resolves and sets the password; then shreds", async () => {
    const secret = newPassword(1);
    await control.faults({ reset: true, fail: { count: 1, status: 503, writesOnly: true } });
    const changeId = await capture(users[0]!, secret);
    expect(await until(changeId, "ResetFailed")).toEqual(["ChangeCaptured", "UserResolved", "ResetFailed"]);
    expect(await loadSealedSecret(log.db, changeId)).toBeDefined();
    await control.faults({ reset: true });

    await requestRetry(log, changeId, "alice", "relay back");
    expect(await until(changeId, "SecretShredded")).toEqual([
      "ChangeCaptured",
      "UserResolved",
      "ResetFailed",
      "RetryRequested",
      "UserResolved",
      "PasswordSet",
      "SecretShredded",
    ]);
    expect(await control.signIn(users[0]!.userPrincipalName, secret)).toBe(true);
    expect(await loadSealedSecret(log.db, changeId)).toBeUndefined();
    const set = (await readStream(log.db, `change-${changeId}`)).find((e) => e.type === "PasswordSet")!;
    expect(set.data).toMatchObject({ attempts: 1 });
  });

  it("the reaper shreds a failed change's secret once the window has passed; a retry is then refused", async () => {
    await control.faults({ reset: true, fail: { count: 1, status: 503, writesOnly: true } });
    const changeId = await capture(users[1]!, newPassword(2));
    await until(changeId, "ResetFailed");
    await control.faults({ reset: true });
    expect(await reapExpiredSecrets(log, 3_600_000, logger)).toBe(0);
    expect(await loadSealedSecret(log.db, changeId)).toBeDefined();
    expect(await reapExpiredSecrets(log, 3_600_000, logger, new Date(Date.now() + 2 * 3_600_000))).toBe(1);
    expect(await types(changeId)).toEqual(["ChangeCaptured", "UserResolved", "ResetFailed", "SecretShredded"]);
    expect(await loadSealedSecret(log.db, changeId)).toBeUndefined();
    await expect(requestRetry(log, changeId, "alice", "")).rejects.toMatchObject({ message: expect.stringContaining("sealed password was already destroyed") });
  });

  it("a change ingest refused (its stream holds only ChangeRefused) is not failed: a retry is refused, naming it", async () => {
    const changeId = randomUUID();
    await appendToStream(log.db, changeStreamId(changeId), [newEvent("ChangeRefused", { changeId })], { expectedVersion: "no_stream" });
    await expect(requestRetry(log, changeId, "alice", "")).rejects.toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      message: expect.stringContaining("its latest step is ChangeRefused"),
    });
  });

  it("no password appears in any log line", () => {
    expect(lines.join("\n")).not.toMatch(/Retry-Canary/);
  });

  it("one change is one trace: resolver and executor spans chain through the events; no password in any span", async () => {
    await telemetry.flush();
    const finished = spans.getFinishedSpans();
    const text = JSON.stringify(finished.map((s) => ({ name: s.name, attributes: s.attributes, events: s.events, status: s.status })));
    expect(text).not.toMatch(/Retry-Canary/);
    const changeId = (await log.db.selectFrom("change_summaries").select("change_id").where("account_name", "=", "retry0").executeTakeFirstOrThrow()).change_id;
    const ofChange = finished.filter((s) => s.attributes["pwsync.stream_id"] === `change-${changeId}`);
    expect(ofChange.map((s) => s.name)).toEqual([
      "resolver ChangeCaptured",
      "reset-executor UserResolved",
      "resolver RetryRequested",
      "reset-executor UserResolved",
    ]);
    expect(new Set(ofChange.map((s) => s.spanContext().traceId)).size).toBe(1);
    // The executor's span is the child of the resolver's, through UserResolved's metadata.
    expect(ofChange[1]!.parentSpanContext?.spanId).toBe(ofChange[0]!.spanContext().spanId);
    // The seed's Benchmark line rides on the executor spans.
    expect(ofChange[1]!.attributes).toMatchObject({ "pwsync.outcome": "ResetFailed", "pwsync.attempts": 1 });
    expect(ofChange[3]!.attributes).toMatchObject({
      "pwsync.outcome": "PasswordSet",
      "pwsync.total_ms": expect.any(Number),
      "pwsync.work_ms": expect.any(Number),
      "pwsync.wait_ms": expect.any(Number),
    });
    const resolvedAgain = (await readStream(log.db, `change-${changeId}`)).filter((e) => e.type === "UserResolved")[1]!;
    expect(resolvedAgain.metadata.traceparent).toContain(ofChange[2]!.spanContext().spanId);
  });
});
