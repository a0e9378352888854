import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { generateRecipientKeyPair } from "@pwsync/crypto";
import { ensureDevPki, type DevPkiPaths } from "@pwsync/pki";
import { eventually } from "@pwsync/testkit";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import { startTelemetry, type Telemetry } from "@pwsync/telemetry";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { startAgent, type RunningAgent } from "./agent.js";
import { changeIdFor } from "./capture/changeId.js";
import { agentConfigSchema, type AgentConfig } from "./config.js";
import { decodeFrame, encodeSpoolEnvelope } from "./frame/index.js";
import { capturingLogger } from "./test-support/capturingLogger.js";
import { frameFor, sendRaw } from "./test-support/frames.js";
import { startIngestPair } from "./test-support/ingestPair.js";
import { formatTable, runVerify } from "./verify/verify.js";
import { agentLdapSettings, acquireSambaDc, type SambaDc } from "./test-support/samba.js";

// A password no fixture holds: made up at run time, searched for on disk and in logs at the end.
const canary = `Cnry-${randomBytes(6).toString("hex")}-Zq9!`;
const root = mkdtempSync(path.join(tmpdir(), "dc-agent-e2e-"));
const here = path.dirname(fileURLToPath(import.meta.url));

let dc: SambaDc;
let pki: DevPkiPaths;
let ingest: Awaited<ReturnType<typeof startIngestPair>>;
let agent: RunningAgent;
let config: AgentConfig;
let telemetry: Telemetry;
// In-process: the agent and both ingest servers share this tracer provider.
const spans = new InMemorySpanExporter();
const agentLog = capturingLogger();
const serverLog = capturingLogger("ingest");
const childLogs: string[] = [];

function configFor(dataDir: string, socket: string, spoolDir?: string): AgentConfig {
  const keysDir = path.join(root, "keys");
  return agentConfigSchema.parse({
    agent: { domainController: "dc01.pwsync.test", dataDir },
    endpoint: { path: socket, readTimeoutMs: 1000 },
    ...(spoolDir ? { spool: { dir: spoolDir, protection: "none", scanIntervalMs: 200 } } : {}),
    ingest: {
      primary: { address: `127.0.0.1:${ingest.ports.primary}`, serverName: "localhost" },
      secondary: { address: `127.0.0.1:${ingest.ports.secondary}`, serverName: "localhost" },
      tls: { caFile: pki.ca.cert, certFile: pki.agents.dc01!.cert, keyFile: pki.agents.dc01!.key },
      sealingPublicKeyFile: path.join(keysDir, "sealing.pub.pem"),
      timeoutMs: 3000,
      connectionAttempts: 2,
      attemptPauseMs: 100,
      connectionFailDelayMs: 300,
      heartbeatIntervalMs: 1000,
    },
    ldap: agentLdapSettings(dc),
    alarms: { queueAgeMs: 1000, queueDepth: 15, checkIntervalMs: 200 },
  }) as AgentConfig;
}

beforeAll(async () => {
  telemetry = await startTelemetry({ serviceName: "dc-agent-test", spanExporter: spans });
  dc = acquireSambaDc();
  pki = await ensureDevPki(path.join(root, "pki"), { agents: ["dc01"] });
  const keys = generateRecipientKeyPair();
  mkdirSync(path.join(root, "keys"));
  writeFileSync(path.join(root, "keys", "sealing.pub.pem"), keys.publicPem);
  ingest = await startIngestPair(pki, keys.keyId, serverLog.logger);
  config = configFor(path.join(root, "agent"), path.join(root, "run", "agent.sock"), path.join(root, "spool"));
  agent = await startAgent(config, agentLog.logger);
}, 600_000);

afterAll(async () => {
  await agent?.stop();
  await ingest?.close();
  dc?.release();
  await telemetry?.shutdown();
});

const send = (account: string, sequence?: bigint) => sendRaw(config.endpoint.path, frameFor(account, canary, sequence));
const idOf = (frame: Buffer) => {
  const d = decodeFrame(frame);
  if (!d.ok) throw new Error(d.error.message);
  return changeIdFor("dc01.pwsync.test", d.value);
};
const committed = async (ids: string[]) => {
  const rows = await ingest.captured();
  return ids.every((id) => rows.some((r) => r.changeId === id)) ? rows.filter((r) => ids.includes(r.changeId)) : undefined;
};

describe("dc-agent against a Samba AD DC and the real ingest", () => {
  it("sends heartbeats that ingest records: version, DC, queue depth", async () => {
    const row = await eventually("heartbeat recorded", async () =>
      ingest.log.db.selectFrom("agent_status").selectAll().where("agent_id", "=", "dc01").executeTakeFirst(),
    );
    // The DC recorded is the one the agent's certificate names, not the heartbeat's claim.
    expect(row).toMatchObject({ domain_controller: "dc01" });
    expect(row.agent_version).toMatch(/^\d+\.\d+\.\d+/);
    expect(Number(row.queue_depth)).toBeGreaterThanOrEqual(0);
    expect(Date.now() - row.last_heartbeat_at.getTime()).toBeLessThan(60_000);
  });

  it("dc-agent verify passes every check against healthy servers, and says why an account is not synced", async () => {
    const good = await runVerify(config, { account: "alice" });
    expect(good.filter((r) => !r.ok)).toEqual([]);
    expect(good.map((r) => r.check)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^ingest primary/),
        expect.stringMatching(/^ingest secondary/),
        expect.stringMatching(/^LDAP bind/),
        'filter for "alice"',
      ]),
    );
    const outside = await runVerify(config, { account: "bob" });
    expect(outside.find((r) => r.check === 'filter for "bob"')).toMatchObject({ ok: false, detail: expect.stringMatching(/not synchronised/) });
    expect(formatTable(outside)).toMatch(/1 check\(s\) failed/);
  });

  it("serves the exact bytes the C filter sends (frames captured under wine by lsa-filter/test/run.sh)", async () => {
    const capturedDir = path.resolve(here, "../../.state/lsa-filter/captured");
    const files = existsSync(capturedDir)
      ? readdirSync(capturedDir)
          .filter((f) => f.endsWith(".bin"))
          .sort()
      : [];
    // scripts/test.sh runs the wine suite first and requires the frames; alone, run.sh makes them.
    if (files.length === 0) {
      if (process.env.PWSYNC_REQUIRE_CAPTURED_FRAMES === "1") throw new Error(`no captured frames in ${capturedDir}`);
      return;
    }
    for (const file of files) {
      const bytes = readFileSync(path.join(capturedDir, file));
      const decoded = decodeFrame(bytes);
      if (!decoded.ok) throw new Error(`${file}: ${decoded.error.message}`);
      const account = decoded.value.accountNameUtf16le.toString("utf16le");
      expect({ file, ack: await sendRaw(config.endpoint.path, bytes) }).toMatchObject({ file, ack: { status: "accepted" } });
      // The vectors' accounts are not in the directory: read, looked up, and dropped by scope.
      await eventually(`${file} handled`, async () => agentLog.records().some((r) => r.account === account && String(r.msg).includes("change dropped")));
    }
  });

  it("turns a frame into a committed change with the account's AD attributes, and drops accounts outside the scope", async () => {
    const frame = frameFor("alice", canary);
    expect(await sendRaw(config.endpoint.path, frame)).toMatchObject({ status: "accepted" });
    const [row] = await eventually("alice committed", () => committed([idOf(frame)]));
    expect(row).toMatchObject({ accountName: "alice", mail: "alice@pwsync.test" });
    // One trace from the DC on: the agent's capture span is the parent of ingest's commit span,
    // whose context the ChangeCaptured event carries for every consumer after it.
    await telemetry.flush();
    const capture = spans.getFinishedSpans().find((s) => s.name === "dc-agent capture" && s.attributes["pwsync.change_id"] === idOf(frame));
    const commit = spans.getFinishedSpans().find((s) => s.name === "ingest commit" && s.attributes["pwsync.change_id"] === idOf(frame));
    expect(capture).toBeDefined();
    expect(commit?.spanContext().traceId).toBe(capture!.spanContext().traceId);
    expect(row!.traceparent).toBe(`00-${commit!.spanContext().traceId}-${commit!.spanContext().spanId}-01`);
    expect(JSON.stringify(spans.getFinishedSpans().map((s) => s.attributes))).not.toContain(canary);
    // bob is not in Password Sync (nested or not): acknowledged to the filter, never sent.
    const bob = frameFor("bob", canary);
    expect(await sendRaw(config.endpoint.path, bob)).toMatchObject({ status: "accepted" });
    await eventually("drop logged", async () => agentLog.records().some((r) => r.account === "bob" && String(r.msg).includes("change dropped")));
    // carol is a member through a nested group.
    const carol = frameFor("carol", canary);
    await sendRaw(config.endpoint.path, carol);
    await eventually("carol committed", () => committed([idOf(carol)]));
    expect((await ingest.captured()).some((r) => r.accountName === "bob")).toBe(false);
    await eventually("queue empty", async () => agent.queue.depth === 0);
  });

  it("stores a frame delivered twice (filter never saw the first ack) once", async () => {
    const frame = frameFor("o(brien)", canary);
    await sendRaw(config.endpoint.path, frame);
    await sendRaw(config.endpoint.path, frame);
    await eventually("committed", () => committed([idOf(frame)]));
    await eventually("queue empty", async () => agent.queue.depth === 0);
    expect((await ingest.captured()).filter((r) => r.changeId === idOf(frame))).toHaveLength(1);
  });

  it("drains the filter's spool folder in order", async () => {
    const spool = path.join(root, "spool");
    mkdirSync(spool, { recursive: true });
    const frames = [frameFor("zoë", canary, 1n), frameFor("alice", canary, 2n)];
    frames.forEach((f, i) => writeFileSync(path.join(spool, `${i.toString(16).padStart(16, "0")}-${"0".repeat(16)}.pwsf`), encodeSpoolEnvelope(f)));
    writeFileSync(path.join(spool, `${"f".repeat(16)}-${"0".repeat(16)}.pwsf`), Buffer.from("not an envelope"));
    const rows = await eventually("spooled frames committed", () => committed(frames.map(idOf)));
    expect(rows.map((r) => r.accountName)).toEqual(["zoë", "alice"]);
    await eventually("spool emptied", async () => readdirSync(spool).every((n) => n.endsWith(".rejected")));
  });

  it("fails over to the secondary when the primary dies, losing and duplicating nothing", async () => {
    await ingest.stop("primary");
    try {
      const frames = ["alice", "carol", "ann)(!~&", "alice", "dan"].map((a) => frameFor(a, canary));
      for (const f of frames) expect(await sendRaw(config.endpoint.path, f)).toMatchObject({ status: "accepted" });
      const rows = await eventually("all committed via the secondary", () => committed(frames.map(idOf)));
      expect(rows.map((r) => r.changeId)).toEqual(frames.map(idOf));
      expect(agentLog.records().some((r) => r.server === "secondary" && r.msg === "streaming changes to ingest")).toBe(true);
    } finally {
      await ingest.start("primary");
    }
  });

  it("keeps a backlog on disk while both servers are down and drains it in order when one returns", async () => {
    await ingest.stop("primary");
    await ingest.stop("secondary");
    const accounts = Array.from({ length: 20 }, (_, i) => ["alice", "carol", "dan", "zoë"][i % 4]!);
    const frames = accounts.map((a) => frameFor(a, canary));
    for (const f of frames) expect(await sendRaw(config.endpoint.path, f)).toMatchObject({ status: "accepted" });
    // Acknowledged from the intake; the scope check then moves each one to the outbox.
    await eventually("all scope-checked", async () => agent.intake.depth === 0 && agent.queue.depth === 20);
    const segmentBytes = readdirSync(path.join(config.agent.dataDir, "queue")).reduce(
      (n, f) => n + statSync(path.join(config.agent.dataDir, "queue", f)).size,
      0,
    );
    expect(segmentBytes).toBeGreaterThan(20 * 100);
    // Over the depth (15) and age (1 s) thresholds: alarms, never a drop.
    await eventually(
      "alarms raised",
      async () => ["queueDepth", "queueAge"].every((a) => agentLog.records().some((r) => r.alarm === a && String(r.msg).startsWith("ALARM raised"))),
      5000,
    );
    expect(agent.queue.depth).toBe(20);
    await ingest.start("secondary");
    const rows = await eventually("backlog drained", () => committed(frames.map(idOf)), 30_000);
    expect(rows.map((r) => r.changeId)).toEqual(frames.map(idOf));
    await ingest.start("primary");
    await eventually("queue empty", async () => agent.queue.depth === 0);
  });

  it("answers malformed frames with a log line and a reject, and keeps serving", async () => {
    const good = frameFor("alice", canary);
    const wrongVersion = Buffer.from(good);
    wrongVersion.writeUInt16LE(9, 4);
    const oversized = Buffer.alloc(4096, 0x41);
    frameFor("alice", canary).copy(oversized, 0, 0, 40);
    oversized.writeUInt32LE(4096, 8);
    const cases: [string, Buffer][] = [
      ["garbage", randomBytes(64)],
      ["truncated", good.subarray(0, 50)],
      ["wrong version", wrongVersion],
      ["oversized", oversized],
      ["empty", Buffer.alloc(0)],
      ["trailing bytes", Buffer.concat([good, Buffer.from([1, 2, 3])])],
    ];
    for (const [, bytes] of cases) {
      const before = agentLog.lines.length;
      const answer = await sendRaw(config.endpoint.path, bytes);
      expect(answer === "closed" || answer.status === "rejected").toBe(true);
      await eventually("log line", async () =>
        agentLog
          .records()
          .slice(before)
          .some((r) => r.level === "warn" && /malformed frame|not completed/.test(String(r.msg))),
      );
    }
    const after = frameFor("alice", canary);
    expect(await sendRaw(config.endpoint.path, after)).toMatchObject({ status: "accepted" });
    await eventually("still serving", () => committed([idOf(after)]));
  });

  it("delivers exactly once when killed -9 after ingest committed but before the queue recorded it", async () => {
    const dataDir = path.join(root, "crash-agent");
    const socket = path.join(root, "run", "crash.sock");
    const yamlFile = path.join(root, "crash.yaml");
    writeFileSync(yamlFile, stringify(JSON.parse(JSON.stringify(configFor(dataDir, socket)))));
    const run = (fault: boolean) => {
      const child = spawn(process.execPath, ["--import", "tsx", path.join(here, "main.ts")], {
        env: { ...process.env, PWSYNC_CONFIG: yamlFile, ...(fault ? { DC_AGENT_FAULT: "kill-after-ingest-ack" } : {}) },
        stdio: ["ignore", "pipe", "pipe"],
      });
      child.stdout.on("data", (c: Buffer) => childLogs.push(String(c)));
      child.stderr.on("data", (c: Buffer) => childLogs.push(String(c)));
      const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.on("exit", (code, signal) => resolve(signal ?? code)));
      return { child, exited };
    };
    const first = run(true);
    await eventually("crash agent listening", async () => childLogs.join("").includes("listening for the filter's frames"), 30_000);
    const frame = frameFor("dan", canary);
    expect(await sendRaw(socket, frame)).toMatchObject({ status: "accepted" });
    expect(await first.exited).toBe("SIGKILL");
    expect(await committed([idOf(frame)])).toHaveLength(1);

    const second = run(false);
    try {
      await eventually("re-sent and acknowledged as duplicate", async () => childLogs.join("").includes('"status":"duplicate"'), 30_000);
      expect((await ingest.captured()).filter((r) => r.changeId === idOf(frame))).toHaveLength(1);
    } finally {
      second.child.kill("SIGTERM");
      await second.exited;
    }
  });

  it("follows a sealing key rotation announced in ingest's heartbeat answers: new changes are sealed to the new key", async () => {
    const next = generateRecipientKeyPair();
    const { appendToStream } = await import("@pwsync/eventlog");
    const { newEvent } = await import("@pwsync/proto");
    await appendToStream(
      ingest.log.db,
      "sealing-keys",
      [{ ...newEvent("SealingKeyCreated", { keyId: next.keyId, publicKeyPem: next.publicPem, epoch: 1 }), metadata: { actor: "test" } }],
      { expectedVersion: "any" },
    );
    await eventually("the agent to switch keys", async () => agentLog.records().some((r) => r.to === next.keyId), 30_000);
    const frame = frameFor("alice", canary);
    await sendRaw(config.endpoint.path, frame);
    await eventually("committed", () => committed([idOf(frame)]));
    const secret = await ingest.log.db.selectFrom("sealed_secrets").select("key_id").where("change_id", "=", idOf(frame)).executeTakeFirstOrThrow();
    expect(secret.key_id).toBe(next.keyId);
  });

  it("leaves no plaintext password on the agent's disk or in its logs", async () => {
    const needles = [Buffer.from(canary, "utf8"), Buffer.from(canary, "utf16le")];
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const p = path.join(dir, name);
        const s = statSync(p);
        if (s.isDirectory()) walk(p);
        else if (s.isFile()) files.push(p);
      }
    };
    walk(config.agent.dataDir);
    walk(path.join(root, "crash-agent"));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const bytes = readFileSync(file);
      for (const needle of needles) expect(bytes.includes(needle), file).toBe(false);
    }
    const logs = [...agentLog.lines, ...serverLog.lines, ...childLogs].join("");
    expect(logs.length).toBeGreaterThan(1000);
    expect(logs.includes(canary)).toBe(false);
  });
});
