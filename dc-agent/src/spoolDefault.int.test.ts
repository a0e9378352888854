import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { generateRecipientKeyPair } from "@pwsync/crypto";
import { ensureDevPki, type DevPkiPaths } from "@pwsync/pki";
import { eventually } from "@pwsync/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spoolDirOf, startAgent, type RunningAgent } from "./agent.js";
import { changeIdFor } from "./capture/changeId.js";
import { agentConfigSchema, type AgentConfig } from "./config.js";
import { decodeFrame, encodeFrame, encodeSpoolEnvelope, FILETIME_UNIX_EPOCH } from "./frame/index.js";
import { capturingLogger } from "./test-support/capturingLogger.js";
import { startIngestPair } from "./test-support/ingestPair.js";
import { agentLdapSettings, acquireSambaDc, type SambaDc } from "./test-support/samba.js";
import { formatTable, runVerify } from "./verify/verify.js";

// Issue 11, finding 1 ("lost silently"): the filter spools while the agent is down, and the
// agent must drain that spool without anyone configuring where it is; verify must notice files
// left there. No spool.dir in this configuration, on purpose.

const canary = `Spool-${randomBytes(6).toString("hex")}-Zq9!`;
const root = mkdtempSync(path.join(tmpdir(), "dc-agent-spooldefault-"));
let dc: SambaDc;
let pki: DevPkiPaths;
let ingest: Awaited<ReturnType<typeof startIngestPair>>;
let agent: RunningAgent | undefined;
let config: AgentConfig;
const agentLog = capturingLogger();

function spooled(account: string, sequence: bigint, capturedMs: number): { name: string; frame: Buffer } {
  const filetime = BigInt(capturedMs) * 10_000n + FILETIME_UNIX_EPOCH;
  const r = encodeFrame({
    accountUtf16le: Buffer.from(account, "utf16le"),
    passwordUtf16le: Buffer.from(canary, "utf16le"),
    sequence,
    capturedAtFiletime: filetime,
  });
  if (!r.ok) throw new Error(r.error.message);
  return { name: `${sequence.toString(16).padStart(16, "0")}-${filetime.toString(16).padStart(16, "0")}.pwsf`, frame: r.value };
}

beforeAll(async () => {
  dc = acquireSambaDc();
  pki = await ensureDevPki(path.join(root, "pki"), { agents: ["dc01"] });
  const keys = generateRecipientKeyPair();
  mkdirSync(path.join(root, "keys"));
  writeFileSync(path.join(root, "keys", "sealing.pub.pem"), keys.publicPem);
  ingest = await startIngestPair(pki, keys.keyId, capturingLogger("ingest").logger);
  config = agentConfigSchema.parse({
    agent: { domainController: "dc01.pwsync.test", dataDir: path.join(root, "agent") },
    endpoint: { path: path.join(root, "run", "agent.sock") },
    spool: { protection: "none", scanIntervalMs: 200 },
    ingest: {
      primary: { address: `127.0.0.1:${ingest.ports.primary}`, serverName: "localhost" },
      tls: { caFile: pki.ca.cert, certFile: pki.agents.dc01!.cert, keyFile: pki.agents.dc01!.key },
      sealingPublicKeyFile: path.join(root, "keys", "sealing.pub.pem"),
      heartbeatIntervalMs: 60_000,
    },
    ldap: agentLdapSettings(dc),
    alarms: { spoolAgeMs: 60_000 },
  }) as AgentConfig;
}, 600_000);

afterAll(async () => {
  await agent?.stop();
  await ingest?.close();
  dc?.release();
});

describe("one spool, one owner (issue 11, finding 1)", () => {
  it("verify reports changes left in the filter's spool, and fails once they are older than alarms.spoolAgeMs", async () => {
    expect(config.spool.dir).toBeUndefined();
    const dir = spoolDirOf(config);
    mkdirSync(dir, { recursive: true });
    const old = spooled("alice", 1n, Date.now() - 3_600_000);
    writeFileSync(path.join(dir, old.name), encodeSpoolEnvelope(old.frame));
    const rows = await runVerify(config);
    const row = rows.find((r) => r.check.startsWith("spool folder"))!;
    expect(row).toMatchObject({ ok: false, detail: expect.stringMatching(/^1 file\(s\) waiting, oldest 3[56]\d\d s: older than alarms.spoolAgeMs/) });
    expect(formatTable(rows)).toContain(dir);
  });

  it("an agent started with no spool setting drains the changes the filter spooled while it was stopped", async () => {
    const dir = spoolDirOf(config);
    const now = Date.now();
    const fresh = [spooled("carol", 2n, now - 2_000), spooled("dan", 3n, now - 1_000)];
    for (const f of fresh) writeFileSync(path.join(dir, f.name), encodeSpoolEnvelope(f.frame));
    agent = await startAgent(config, agentLog.logger);
    const ids = [spooled("alice", 1n, 0), ...fresh].map((f) => f.frame);
    const idOf = (frame: Buffer) => {
      const d = decodeFrame(frame);
      if (!d.ok) throw new Error(d.error.message);
      return changeIdFor("dc01.pwsync.test", d.value);
    };
    const wanted = [idOf(fresh[0]!.frame), idOf(fresh[1]!.frame)];
    const rows = await eventually(
      "spooled changes committed",
      async () => {
        const all = await ingest.captured();
        return wanted.every((id) => all.some((r) => r.changeId === id)) ? all : undefined;
      },
      30_000,
    );
    expect(
      rows
        .filter((r) => ["alice", "carol", "dan"].includes(r.accountName))
        .map((r) => r.accountName)
        .sort(),
    ).toEqual(["alice", "carol", "dan"]);
    await eventually("spool empty", async () => readdirSync(dir).filter((n) => n.endsWith(".pwsf")).length === 0);
    expect(ids.length).toBe(3);
    expect((await runVerify(config)).find((r) => r.check.startsWith("spool folder"))).toMatchObject({ ok: true, detail: "0 file(s) waiting, oldest 0 s" });
    expect(agentLog.lines.join("\n")).not.toContain(canary);
  });
});
