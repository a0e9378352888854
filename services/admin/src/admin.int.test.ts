import * as grpc from "@grpc/grpc-js";
import { openEventLog, readStream, type EventLog } from "@pwsync/eventlog";
import { createGraphClient, type GraphClient } from "@pwsync/graph";
import { createClient, mtlsChannelCredentials, type RunningGrpcServer } from "@pwsync/grpc";
import { AdminService } from "@pwsync/proto";
import { createLogger } from "@pwsync/log";
import { createCa, ensureDevPki, issueAdminCert, issueClientCert, type DevPkiPaths } from "@pwsync/pki";
import { startSandboxTenant, type SandboxTenantHandle } from "@pwsync/sandbox-tenant";
import { startSmtpCatcher, type SmtpCatcher } from "@pwsync/smtp-catcher";
import { createTestDatabase } from "@pwsync/testkit";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { denialRecorder } from "./audit.js";
import { adminSection } from "./config.js";
import { DynamicClient } from "./dynamic-client.js";
import { startAdminServer } from "./server.js";
import { testAlertSender, type TestAlertSender } from "./test-alert.js";
import * as seed from "./test-support/seed.js";
import { runCli } from "./cli.js";

// The admin API as grpcurl sees it: a client that knows no proto, only server reflection.

const tenantId = "00000000-0000-0000-0000-00000000ad01";
const clientId = "00000000-0000-0000-0000-0000000ad902";
const clientSecret = `secret-${Math.random().toString(36).slice(2)}`;

let log: EventLog;
let pki: DevPkiPaths;
let server: RunningGrpcServer;
let sandbox: SandboxTenantHandle;
let graph: GraphClient;
let smtp: SmtpCatcher;
let sender: TestAlertSender;
let admin: DynamicClient;
let address: string;
const seeded: Record<string, seed.SeededChange> = {};
const logLines: string[] = [];
const logger = createLogger({ service: "admin-test", destination: new Writable({ write: (c, _e, cb) => (logLines.push(String(c)), cb()) }) });

const ADMIN = "pwsync.v1.AdminService";
const pem = (p: string) => readFileSync(p);
const clientFor = (files: { cert: string; key: string } | undefined) =>
  new DynamicClient(address, mtlsChannelCredentials({ ca: pem(pki.ca.cert), ...(files ? { cert: pem(files.cert), key: pem(files.key) } : {}) }));

beforeAll(async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "admin-pki-"));
  pki = await ensureDevPki(dir, { agents: ["dc01-agent"], admins: ["alice"] });
  log = await openEventLog(await createTestDatabase("admin"));
  sandbox = await startSandboxTenant({
    tls: { cert: readFileSync(pki.server.cert, "utf8"), key: readFileSync(pki.server.key, "utf8") },
    tenantId,
    apps: [{ clientId, clientSecret }],
    users: [],
    scryptCost: 1024,
  });
  graph = await createGraphClient({
    tenantId,
    clientId,
    clientSecret,
    authorityHost: sandbox.url,
    graphBaseUrl: sandbox.url,
    caPem: readFileSync(pki.ca.cert, "utf8"),
  });
  smtp = await startSmtpCatcher({ port: 0, host: "127.0.0.1", dir: mkdtempSync(path.join(tmpdir(), "admin-smtp-")) });
  sender = testAlertSender({
    smtp: { host: "127.0.0.1", port: smtp.port, startTls: "off", from: "pwsync@contoso.example" },
    adminRecipients: ["helpdesk@contoso.example"],
  });

  seeded.ok = await seed.captured(log, "alice");
  await seed.passwordSet(log, seeded.ok);
  seeded.retryable = await seed.captured(log, "bob", { agentId: "dc02-agent", dc: "dc02.corp.example" });
  await seed.resolutionFailed(log, seeded.retryable);
  seeded.shredded = await seed.captured(log, "carol");
  await seed.resetFailedShredded(log, seeded.shredded);
  seeded.inFlight = await seed.captured(log, "dave");
  for (let i = 0; i < 5; i++) await seed.captured(log, `bulk${i}`);
  await seed.agentHeartbeat(log, "dc01-agent", "dc01.corp.example", { queueDepth: 2, oldestAge: 4, serverInUse: "secondary" });
  await seed.consumerCheckpoint(log, "resolver");

  const settings = adminSection.parse({ host: "127.0.0.1", port: 0, tls: { caFile: pki.adminCa.cert, certFile: pki.server.cert, keyFile: pki.server.key } });
  server = await startAdminServer(settings, {
    log,
    logger,
    denials: denialRecorder(log, logger, 100),
    graph: { client: async () => graph, baseUrl: sandbox.url },
    testAlert: sender,
    watchdog: settings.watchdog,
  });
  address = `localhost:${server.port}`;
  admin = clientFor(pki.admins.alice);
});

afterAll(async () => {
  admin?.close();
  await server?.shutdown(100);
  sender?.close();
  await smtp?.close();
  graph?.close();
  await sandbox?.close();
  await log?.close();
});

describe("reflection (what grpcurl list / describe see)", () => {
  it("lists the admin and health services", async () => {
    const services = await admin.listServices();
    expect(services).toEqual(expect.arrayContaining([ADMIN, "grpc.health.v1.Health"]));
  });

  it("describes every AdminService RPC from fetched descriptors", async () => {
    const service = await admin.describe(ADMIN);
    expect(service.methods.map((m) => m.name).sort()).toEqual(
      [
        "GetChange",
        "GetStatus",
        "ListAgents",
        "ListChanges",
        "ListRevocations",
        "ListSealingKeys",
        "RetryChange",
        "RevokeAgentCertificate",
        "SendTestAlert",
        "VerifyGraphCredentials",
        "WatchEvents",
      ].sort(),
    );
    expect(service.methods.find((m) => m.name === "WatchEvents")!.methodKind).toBe("server_streaming");
  });

  it("answers the standard health check", async () => {
    expect(await admin.call("grpc.health.v1.Health/Check", { service: ADMIN })).toEqual({ status: "SERVING" });
  });

  it("tells a caller without an admin certificate nothing but health: reflection is refused and audited", async () => {
    const before = (await readStream(log.db, "admin-audit")).length;
    const anonymous = clientFor(undefined);
    const agent = clientFor(pki.agents["dc01-agent"]);
    try {
      await expect(anonymous.listServices()).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
      await expect(agent.listServices()).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    } finally {
      anonymous.close();
      agent.close();
    }
    const denials = (await readStream(log.db, "admin-audit")).slice(before).map((e) => e.data as { method: string });
    expect(denials.map((d) => d.method)).toEqual(expect.arrayContaining(["/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"]));
    // Health stays open: probes carry no admin certificate. Raw bytes, since without reflection
    // this client knows no types: HealthCheckRequest{} → HealthCheckResponse{status: SERVING=1}.
    const probe = new grpc.Client(address, grpc.credentials.createSsl(pem(pki.ca.cert)));
    const raw = (b: Buffer) => b;
    const reply = await new Promise<Buffer>((resolve, reject) =>
      probe.makeUnaryRequest("/grpc.health.v1.Health/Check", raw, raw, Buffer.alloc(0), (err, value) => (err ? reject(err) : resolve(value!))),
    );
    probe.close();
    expect([...reply]).toEqual([0x08, 0x01]);
  });
});

describe("every RPC, called with JSON bodies", () => {
  it("GetStatus: counts, consumer lag, queue depth, tenant", async () => {
    const status = (await admin.call(`${ADMIN}/GetStatus`, {})) as Record<string, any>;
    expect(status.changes).toMatchObject({ total: "9", passwordSet: "1", failed: "2", inFlight: "6" });
    expect(status.consumers).toEqual([expect.objectContaining({ group: "resolver", liveMembers: 1 })]);
    expect(Number(status.consumers[0].lag)).toBeGreaterThan(0);
    expect(status).toMatchObject({ agentQueueDepth: "2", agentsTotal: 1, agentsLive: 1, tenant: "TENANT_KIND_SANDBOX", sealedSecrets: "7" });
  });

  it("ListAgents: identity, version, server in use", async () => {
    const { agents } = (await admin.call(`${ADMIN}/ListAgents`, {})) as { agents: Array<Record<string, unknown>> };
    expect(agents).toEqual([
      expect.objectContaining({ agentId: "dc01-agent", agentVersion: "1.2.3", serverInUse: "secondary", live: true, filterLoaded: true, queueDepth: "2" }),
    ]);
  });

  it("ListChanges: filters by account, state and agent, pages newest first", async () => {
    const byAccount = (await admin.call(`${ADMIN}/ListChanges`, { account: "BOB@contoso.example" })) as { changes: Array<Record<string, unknown>> };
    expect(byAccount.changes).toEqual([expect.objectContaining({ changeId: seeded.retryable!.changeId, state: "CHANGE_STATE_FAILED", agentId: "dc02-agent" })]);
    const failed = (await admin.call(`${ADMIN}/ListChanges`, { state: "CHANGE_STATE_FAILED" })) as { changes: Array<{ accountName: string }> };
    expect(failed.changes.map((c) => c.accountName).sort()).toEqual(["bob", "carol"]);
    const byAgent = (await admin.call(`${ADMIN}/ListChanges`, { agentId: "dc02-agent" })) as { changes: unknown[] };
    expect(byAgent.changes).toHaveLength(1);
    const future = (await admin.call(`${ADMIN}/ListChanges`, { since: new Date(Date.now() + 3_600_000).toISOString() })) as { changes: unknown[] };
    expect(future.changes).toHaveLength(0);

    const seen: string[] = [];
    let token = "";
    for (let page = 0; page < 10; page++) {
      const response = (await admin.call(`${ADMIN}/ListChanges`, { pageSize: 4, pageToken: token })) as {
        changes: Array<{ changeId: string }>;
        nextPageToken: string;
      };
      seen.push(...response.changes.map((c) => c.changeId));
      token = response.nextPageToken;
      if (!token) break;
    }
    expect(seen).toHaveLength(9);
    expect(new Set(seen).size).toBe(9);
    expect(seen.at(-1)).toBe(seeded.ok!.changeId);
  });

  it("GetChange: the whole timeline with durations, actors, trace id and timing", async () => {
    const change = (await admin.call(`${ADMIN}/GetChange`, { changeId: seeded.ok!.changeId })) as Record<string, any>;
    const traceId = seeded.ok!.traceparent.split("-")[1];
    expect(change.summary).toMatchObject({ accountName: "alice", state: "CHANGE_STATE_PASSWORD_SET", traceId });
    expect(change.events.map((e: { type: string }) => e.type)).toEqual(["ChangeCaptured", "UserResolved", "RetryScheduled", "PasswordSet", "SecretShredded"]);
    expect(change.events.map((e: { actor: string }) => e.actor)).toEqual(["ingest", "resolver", "reset-executor", "reset-executor", "reset-executor"]);
    expect(change.events.every((e: { traceId: string }) => e.traceId === traceId)).toBe(true);
    expect(JSON.parse(change.events[3].dataJson)).toMatchObject({ attempts: 2 });
    expect(change).toMatchObject({ totalMs: 2400, workMs: 310, waitMs: 1900, secretPresent: false });
  });

  it("GetChange: NOT_FOUND and INVALID_ARGUMENT", async () => {
    await expect(admin.call(`${ADMIN}/GetChange`, { changeId: "00000000-0000-0000-0000-000000000000" })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    await expect(admin.call(`${ADMIN}/GetChange`, { changeId: "nope" })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
  });

  it("WatchEvents: streams events committed after a position, filtered by change", async () => {
    const head = (await admin.call(`${ADMIN}/GetStatus`, {})) as { lastGlobalPosition: string };
    const target = seeded.inFlight!;
    const watching = admin.stream(`${ADMIN}/WatchEvents`, { afterGlobalPosition: head.lastGlobalPosition, changeId: target.changeId }, 1);
    await seed.captured(log, "someone-else");
    await seed.resolved(log, target);
    const [message] = (await watching) as Array<{ event: Record<string, unknown> }>;
    expect(message!.event).toMatchObject({ type: "UserResolved", streamId: `change-${target.changeId}`, actor: "resolver" });
  });

  it("VerifyGraphCredentials: token and a read against the sandbox tenant", async () => {
    expect(await admin.call(`${ADMIN}/VerifyGraphCredentials`, {})).toMatchObject({ ok: true, tenant: "TENANT_KIND_SANDBOX", failedStage: "" });
  });

  it("SendTestAlert: a [TEST] mail reaches the relay", async () => {
    const response = (await admin.call(`${ADMIN}/SendTestAlert`, {})) as { recipients: string[]; smtpMessageId: string };
    expect(response.recipients).toEqual(["helpdesk@contoso.example"]);
    expect(smtp.messages()).toEqual([
      expect.objectContaining({ envelopeTo: ["helpdesk@contoso.example"], subject: expect.stringMatching(/^\[TEST\] Password sync failed for TEST-ALERT/) }),
    ]);
  });

  it("RetryChange: appends RetryRequested for a failed change whose secret exists, with the admin's name", async () => {
    const c = seeded.retryable!;
    const response = (await admin.call(`${ADMIN}/RetryChange`, { changeId: c.changeId, reason: "user created in Entra" })) as { streamVersion: number };
    expect(response.streamVersion).toBe(3);
    const stream = await readStream(log.db, `change-${c.changeId}`);
    expect(stream.at(-1)).toMatchObject({ type: "RetryRequested", metadata: { actor: "admin:alice", traceparent: c.traceparent } });
    expect(stream.at(-1)!.data).toMatchObject({ requestedBy: "alice", retriedEventType: "ResolutionFailed", reason: "user created in Entra" });
    // Now it is no longer failed: a second retry is refused.
    await expect(admin.call(`${ADMIN}/RetryChange`, { changeId: c.changeId })).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION });
  });

  it("RetryChange: refused once the sealed password is gone, or for a change that did not fail", async () => {
    await expect(admin.call(`${ADMIN}/RetryChange`, { changeId: seeded.shredded!.changeId })).rejects.toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      details: expect.stringContaining("sealed password was already destroyed"),
    });
    await expect(admin.call(`${ADMIN}/RetryChange`, { changeId: seeded.ok!.changeId })).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION });
  });
});

describe("authorization", () => {
  const denialsFor = async (code: string) =>
    (await readStream(log.db, "admin-audit"))
      .filter((e) => e.type === "AdminAccessDenied" && (e.data as { code: string }).code === code)
      .map((e) => e.data as Record<string, unknown>);

  it("an agent certificate is not even authenticated: the admin API trusts only the admin CA", async () => {
    const before = (await denialsFor("UNAUTHENTICATED")).length;
    const agent = clientFor(pki.agents["dc01-agent"]);
    try {
      await expect(agent.call(`${ADMIN}/GetStatus`, {})).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    } finally {
      agent.close();
    }
    expect((await denialsFor("UNAUTHENTICATED")).length).toBe(before + 1);
  });

  it("an admin-CA certificate without the admin role gets PERMISSION_DENIED, recorded with its name", async () => {
    const adminCa = { cert: readFileSync(pki.adminCa.cert, "utf8"), key: readFileSync(pki.adminCa.key, "utf8") };
    const roleless = await issueClientCert(adminCa, "dc01-agent");
    const credentials = mtlsChannelCredentials({ ca: pem(pki.ca.cert), cert: roleless.cert, key: roleless.key });
    // A reflection-driven client (grpcurl) is stopped at reflection already…
    const dynamic = new DynamicClient(address, credentials);
    await expect(dynamic.call(`${ADMIN}/GetStatus`, {})).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    dynamic.close();
    // …and a client compiled from the proto at each RPC.
    const channel = new grpc.Client(address, credentials);
    const typed = createClient(AdminService, channel);
    const firstEvent = async () => {
      for await (const message of typed.watchEvents({})) return message;
    };
    try {
      await expect(typed.getStatus({})).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
      await expect(typed.retryChange({ changeId: seeded.inFlight!.changeId })).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
      await expect(typed.revokeAgentCertificate({ certificateFingerprint: "AB".repeat(32) })).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
      await expect(firstEvent()).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    } finally {
      channel.close();
    }
    const denials = await denialsFor("PERMISSION_DENIED");
    expect(denials.map((d) => d.method)).toEqual([
      "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
      `/${ADMIN}/GetStatus`,
      `/${ADMIN}/RetryChange`,
      `/${ADMIN}/RevokeAgentCertificate`,
      `/${ADMIN}/WatchEvents`,
    ]);
    expect(denials.every((d) => d.subject === "dc01-agent")).toBe(true);
  });

  it("no certificate, or one from another CA, gets UNAUTHENTICATED, recorded", async () => {
    const before = (await denialsFor("UNAUTHENTICATED")).length;
    const anonymous = clientFor(undefined);
    const otherCa = await createCa("someone else's CA");
    const foreign = await issueAdminCert(otherCa, "mallory");
    const stranger = new DynamicClient(address, mtlsChannelCredentials({ ca: pem(pki.ca.cert), cert: foreign.cert, key: foreign.key }));
    try {
      await expect(anonymous.call(`${ADMIN}/ListChanges`, {})).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
      await expect(stranger.call(`${ADMIN}/ListChanges`, {})).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    } finally {
      anonymous.close();
      stranger.close();
    }
    expect((await denialsFor("UNAUTHENTICATED")).length).toBe(before + 2);
  });

  it("a denied caller changes nothing", async () => {
    const stream = await readStream(log.db, `change-${seeded.inFlight!.changeId}`);
    expect(stream.some((e) => e.type === "RetryRequested")).toBe(false);
  });
});

describe("pwsync CLI (same API, tables or --json)", () => {
  const aliceEnv = () => ({
    PWSYNC_ADMIN_ADDR: address,
    PWSYNC_ADMIN_CA: pki.ca.cert,
    PWSYNC_ADMIN_CERT: pki.admins.alice!.cert,
    PWSYNC_ADMIN_KEY: pki.admins.alice!.key,
  });
  const cli = async (...args: string[]) => {
    let out = "";
    let err = "";
    const code = await runCli(args, { out: (t) => (out += t), err: (t) => (err += t), env: aliceEnv() });
    return { code, out, err };
  };

  it("status prints consumers and counts as a table", async () => {
    const { code, out } = await cli("status");
    // The exit code tells whether the watchdog has alerts (seeded heartbeats may already count
    // as silent on a loaded machine); either way it agrees with what is printed.
    expect(out).toMatch(code === 0 ? /watchdog: no alerts/ : /^ALERT\s+SUBJECT\s+SINCE/m);
    expect([0, 1]).toContain(code);
    expect(out).toMatch(/tenant:\s+sandbox/);
    expect(out).toMatch(/CONSUMER\s+LAG\s+REPLICAS/);
    // A row per consumer: name, lag, live replicas (liveness itself is GetStatus's test above).
    expect(out).toMatch(/^resolver\s+\d+\s+\d+\s/m);
  });

  it("changes --state failed --json is the API's proto3 JSON", async () => {
    const { code, out } = await cli("changes", "--state", "failed", "--json");
    expect(code).toBe(0);
    const parsed = JSON.parse(out) as { changes: Array<{ accountName: string; state: string }> };
    expect(parsed.changes.every((c) => c.state === "CHANGE_STATE_FAILED")).toBe(true);
  });

  it("change <id> prints the timeline with actors", async () => {
    const { code, out } = await cli("change", seeded.ok!.changeId);
    expect(code).toBe(0);
    expect(out).toContain("timing:   total 2400 ms, work 310 ms, wait 1900 ms");
    expect(out).toMatch(/PasswordSet\s+reset-executor/);
  });

  it("watch --change streams that change's events until stopped, then exits 0", async () => {
    const stop = new AbortController();
    const passwordSet = new RegExp(`change-${seeded.ok!.changeId}\\s+PasswordSet\\s+reset-executor`);
    let out = "";
    let err = "";
    const code = await runCli(["watch", "--after", "1", "--change", seeded.ok!.changeId], {
      out: (t) => {
        out += t;
        if (passwordSet.test(out)) stop.abort();
      },
      err: (t) => (err += t),
      env: aliceEnv(),
      signal: stop.signal,
    });
    expect({ code, err }).toEqual({ code: 0, err: "" });
    expect(out).toMatch(passwordSet);
    // Other changes' events (the seed has several) are filtered out by the server.
    expect(
      out
        .trimEnd()
        .split("\n")
        .filter((line) => !line.includes(`change-${seeded.ok!.changeId}`)),
    ).toEqual([]);
  });

  it("agents lists the agent with the server in use", async () => {
    const { out } = await cli("agents");
    expect(out).toMatch(/dc01-agent\s+dc01\.corp\.example\s+1\.2\.3\s+loaded\s+2\s+4s\s+secondary/);
  });

  it("revoke-agent records the revocation once (any fingerprint spelling) and revocations lists it", async () => {
    const fingerprint = new X509Certificate(readFileSync(pki.agents["dc01-agent"]!.cert)).fingerprint256;
    const first = await cli("revoke-agent", fingerprint.replaceAll(":", "").toLowerCase(), "--reason", "laptop stolen");
    expect(first).toMatchObject({ code: 0, out: `revoked ${fingerprint}; ingest ends its streams within seconds\n` });
    expect(await cli("revoke-agent", fingerprint)).toMatchObject({ code: 0, out: `${fingerprint} was already revoked\n` });
    const events = await readStream(log.db, "agent-revocations");
    expect(events.map((e) => e.data)).toEqual([{ certificateFingerprint: fingerprint, revokedBy: "alice", reason: "laptop stolen" }]);
    const { out } = await cli("revocations");
    expect(out).toMatch(new RegExp(`alice\\s+${fingerprint}\\s+laptop stolen`));
    expect(await cli("revoke-agent", "not-a-fingerprint")).toMatchObject({ code: 1, err: expect.stringContaining("INVALID_ARGUMENT") });
  });

  it("keys shows the sealing key epochs with their state and live secrets", async () => {
    const { appendToStream } = await import("@pwsync/eventlog");
    const { newEvent } = await import("@pwsync/proto");
    const { timestampFromDate } = await import("@bufbuild/protobuf/wkt");
    await appendToStream(
      log.db,
      "sealing-keys",
      [
        { ...newEvent("SealingKeyCreated", { keyId: "00000000000000a1", publicKeyPem: "-", epoch: 1 }), metadata: {} },
        {
          ...newEvent("SealingKeyRetired", { keyId: "00000000000000a1", epoch: 1, acceptUntil: timestampFromDate(new Date(Date.now() - 60_000)) }),
          metadata: {},
        },
        { ...newEvent("SealingKeyCreated", { keyId: "00000000000000b2", publicKeyPem: "-", epoch: 2 }), metadata: {} },
        { ...newEvent("SealingKeyDestroyed", { keyId: "00000000000000a1", epoch: 1 }), metadata: {} },
      ],
      { expectedVersion: "no_stream" },
    );
    const { code, out } = await cli("keys");
    expect(code).toBe(0);
    expect(out).toMatch(/^2\s+00000000000000b2\s+current\s/m);
    expect(out).toMatch(/^1\s+00000000000000a1\s+destroyed\s/m);
  });

  it("errors carry the gRPC code; missing credentials are a usage error", async () => {
    expect(await cli("retry", seeded.ok!.changeId)).toMatchObject({ code: 1, err: expect.stringContaining("FAILED_PRECONDITION") });
    let err = "";
    expect(await runCli(["status"], { out: () => {}, err: (t) => (err += t), env: {} })).toBe(2);
    expect(err).toContain("--ca, --cert and --key");
  });
});
