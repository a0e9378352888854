import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { generateRecipientKeyPair } from "@pwsync/crypto";
import { ensureDevPki, type DevPkiPaths } from "@pwsync/pki";
import { eventually } from "@pwsync/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgent, type RunningAgent } from "./agent.js";
import { changeIdFor } from "./capture/changeId.js";
import { agentConfigSchema, type AgentConfig } from "./config.js";
import { decodeFrame } from "./frame/index.js";
import { capturingLogger } from "./test-support/capturingLogger.js";
import { frameFor, sendRaw } from "./test-support/frames.js";
import { startHoldingProxy } from "./test-support/holdingProxy.js";
import { startIngestPair } from "./test-support/ingestPair.js";
import { acquireSambaDc, type SambaDc } from "./test-support/samba.js";

// Issue 11, "ack fast, decide later": the agent seals and durably queues a frame the moment it
// arrives and acknowledges the filter; the LDAP scope check runs afterwards, from the queue.
// The directory is the real Samba DC behind a proxy that can hang (accept, never answer).

const canary = `Ack-${randomBytes(6).toString("hex")}-Zq9!`;
const root = mkdtempSync(path.join(tmpdir(), "dc-agent-ackfast-"));
let dc: SambaDc;
let pki: DevPkiPaths;
let ingest: Awaited<ReturnType<typeof startIngestPair>>;
let proxy: Awaited<ReturnType<typeof startHoldingProxy>>;
let agent: RunningAgent;
let config: AgentConfig;
const agentLog = capturingLogger();

beforeAll(async () => {
  dc = acquireSambaDc();
  pki = await ensureDevPki(path.join(root, "pki"), { agents: ["dc01"] });
  const keys = generateRecipientKeyPair();
  mkdirSync(path.join(root, "keys"));
  writeFileSync(path.join(root, "keys", "sealing.pub.pem"), keys.publicPem);
  ingest = await startIngestPair(pki, keys.keyId, capturingLogger("ingest").logger);
  const ldaps = new URL(dc.ldapsUrl);
  proxy = await startHoldingProxy({ host: ldaps.hostname, port: Number(ldaps.port) });
  config = agentConfigSchema.parse({
    agent: { domainController: "dc01.pwsync.test", dataDir: path.join(root, "agent") },
    endpoint: { path: path.join(root, "run", "agent.sock"), readTimeoutMs: 1000 },
    ingest: {
      primary: { address: `127.0.0.1:${ingest.ports.primary}`, serverName: "localhost" },
      tls: { caFile: pki.ca.cert, certFile: pki.agents.dc01!.cert, keyFile: pki.agents.dc01!.key },
      sealingPublicKeyFile: path.join(root, "keys", "sealing.pub.pem"),
      heartbeatIntervalMs: 60_000,
    },
    ldap: {
      url: `ldaps://127.0.0.1:${proxy.port}`,
      serverName: dc.serverName,
      baseDn: dc.baseDn,
      caFile: dc.caFile,
      bindDn: dc.bindDn,
      bindPasswordFile: dc.bindPasswordFile,
      groups: [dc.dn("Password Sync")],
      // Longer than the filter's default pipe budget (2 s): an agent that looked the account
      // up before acknowledging would make the filter give up and spool.
      timeoutMs: 4_000,
      retryDelayMs: 200,
    },
  }) as AgentConfig;
  agent = await startAgent(config, agentLog.logger);
}, 600_000);

afterAll(async () => {
  await agent?.stop();
  await proxy?.close();
  await ingest?.close();
  dc?.release();
});

const idOf = (frame: Buffer) => {
  const d = decodeFrame(frame);
  if (!d.ok) throw new Error(d.error.message);
  return changeIdFor("dc01.pwsync.test", d.value);
};

describe("ack fast, decide later (issue 11)", () => {
  it("acknowledges a frame while the directory hangs, keeps it sealed in the intake, and scope-checks it once the directory answers", async () => {
    proxy.hold();
    const frame = frameFor("alice", canary);
    const acks = await Promise.all([sendRaw(config.endpoint.path, frame), sendRaw(config.endpoint.path, frameFor("carol", canary))]);
    expect(acks).toMatchObject([{ status: "accepted" }, { status: "accepted" }]);
    // Acknowledged, durable, and not decided: nothing has reached ingest, nothing was dropped.
    expect(agent.intake.depth + agent.queue.depth).toBe(2);
    await eventually("the scope check reports the hung directory", async () =>
      agentLog.records().some((r) => String(r.msg).startsWith("cannot look the account up")),
    );
    expect(await ingest.captured()).toEqual([]);
    expect(agent.intake.depth).toBe(2);
    const intakeBytes = readdirSync(path.join(config.agent.dataDir, "intake")).map((f) => readFileSync(path.join(config.agent.dataDir, "intake", f)));
    for (const bytes of intakeBytes) {
      expect(bytes.includes(Buffer.from(canary, "utf8"))).toBe(false);
      expect(bytes.includes(Buffer.from(canary, "utf16le"))).toBe(false);
    }

    proxy.forward();
    const rows = await eventually(
      "committed after the directory came back",
      async () => {
        const all = await ingest.captured();
        return all.length === 2 ? all : undefined;
      },
      30_000,
    );
    expect(rows.find((r) => r.changeId === idOf(frame))).toMatchObject({ accountName: "alice", mail: "alice@pwsync.test" });
    await eventually("both queues empty", async () => agent.intake.depth === 0 && agent.queue.depth === 0);
  });

  it("drops an out-of-scope change from the queue with a log line, after acknowledging it", async () => {
    const frame = frameFor("bob", canary);
    expect(await sendRaw(config.endpoint.path, frame)).toMatchObject({ status: "accepted" });
    await eventually("drop logged", async () => agentLog.records().some((r) => r.account === "bob" && String(r.msg).includes("change dropped")));
    await eventually("intake empty", async () => agent.intake.depth === 0);
    expect((await ingest.captured()).some((r) => r.accountName === "bob")).toBe(false);
    expect(agentLog.lines.join("\n")).not.toContain(canary);
  });
});
