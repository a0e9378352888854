import { execFileSync, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { generateRecipientKeyPair, loadRecipientKeyPair } from "@pwsync/crypto";
import { changeStreamId, isChangeOutcome, readStream, type Processor } from "@pwsync/eventlog";
import { createGraphClient, type GraphClient } from "@pwsync/graph";
import { ensureDevPki, type DevPkiPaths } from "@pwsync/pki";
import { executorSection, SlidingWindowLimiter, startExecutor } from "@pwsync/reset-executor";
import { startResolver } from "@pwsync/resolver";
import { sandboxControl, startSandboxTenant, type SandboxTenantHandle } from "@pwsync/sandbox-tenant";
import { eventually } from "@pwsync/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgent, type RunningAgent } from "./agent.js";
import { agentConfigSchema, type AgentConfig } from "./config.js";
import { capturingLogger } from "./test-support/capturingLogger.js";
import { startIngestPair } from "./test-support/ingestPair.js";
import { agentLdapSettings, acquireSambaDc, type SambaDc } from "./test-support/samba.js";

// Issue 11, end to end with the real DLL under wine: the agent is stopped → LSA (the wine
// harness calling the real pwsync-filter.dll's PasswordChangeNotify) changes passwords → the
// filter spools them, DPAPI-encrypted → the agent starts, drains the spool (decrypting through
// pwsync-service.exe unprotect under wine, the helper the Windows service provides), seals,
// scope-checks against the Samba DC, streams to the real ingest; resolver and reset-executor
// set the passwords in the sandbox tenant, newest capture winning for each user.

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const root = mkdtempSync(path.join(tmpdir(), "dc-agent-wine-e2e-"));
const winePrefix = path.join(repo, ".state", "wine");
const canary = `Wine${randomBytes(5).toString("hex")}Aa`;
// In capture order; each user's last one must be the password Entra ends with.
const changes = [
  { account: "alice", n: 1 },
  { account: "carol", n: 1 },
  { account: "alice", n: 2 },
  { account: "dan", n: 1 },
  { account: "alice", n: 3 },
];
const passwordOf = (c: { account: string; n: number }) => `${canary}-${c.account}-${c.n}`;

let dc: SambaDc;
let pki: DevPkiPaths;
let ingest: Awaited<ReturnType<typeof startIngestPair>>;
let sandbox: SandboxTenantHandle;
let graph: GraphClient;
let control: ReturnType<typeof sandboxControl>;
let resolver: Processor;
let executor: Processor;
let agent: RunningAgent | undefined;
const shutdown = new AbortController();
const agentLog = capturingLogger();
const serverLog = capturingLogger("server");
const W = (p: string) => `Z:${p.replace(/\//g, "\\")}`;
const wineEnv = { ...process.env, WINEPREFIX: winePrefix, WINEDLLOVERRIDES: "mscoree,mshtml=", WINEDEBUG: "-all" };

function runWine(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    // Wine's console needs a file, not a pipe, for a CRT program's stdout.
    const outFile = path.join(root, `wine-${randomUUID()}.out`);
    const child = spawn("bash", ["-c", `exec wine "$@" >"${outFile}" 2>&1`, "wine", ...args], { env, stdio: "ignore" });
    child.on("close", (code) => resolve({ code, out: existsSync(outFile) ? readFileSync(outFile, "utf8") : "" }));
  });
}

beforeAll(async () => {
  if (!existsSync(path.join(winePrefix, "system.reg")))
    execFileSync("bash", [path.join(repo, "lsa-filter/scripts/install-toolchain.sh")], { stdio: "inherit", env: { ...process.env, PWSYNC_WINE32: "0" } });
  execFileSync("make", ["-C", path.join(repo, "lsa-filter"), "-s", "x64"], { stdio: "inherit" });
  execFileSync("make", ["-C", path.join(repo, "dc-agent/windows/service"), "-s", `OUT=${path.join(root, "service")}`], { stdio: "inherit" });
  const helper = path.join(root, "dpapi-helper.sh");
  writeFileSync(helper, `#!/bin/sh\nWINEPREFIX='${winePrefix}' WINEDEBUG=-all exec wine '${path.join(root, "service", "pwsync-service.exe")}' "$@"\n`);
  chmodSync(helper, 0o755);
  process.env.PWSYNC_DPAPI_HELPER = helper;

  dc = acquireSambaDc();
  pki = await ensureDevPki(path.join(root, "pki"), { agents: ["dc01"] });
  const keys = generateRecipientKeyPair();
  mkdirSync(path.join(root, "keys"));
  writeFileSync(path.join(root, "keys", "sealing.pub.pem"), keys.publicPem);
  ingest = await startIngestPair(pki, keys.keyId, serverLog.logger);

  const tenantId = "00000000-0000-0000-0000-00000000e2e0";
  const clientId = "00000000-0000-0000-0000-0000000e2e01";
  const clientSecret = `secret-${randomUUID()}`;
  const caPem = readFileSync(pki.ca.cert, "utf8");
  sandbox = await startSandboxTenant({
    tls: { cert: readFileSync(pki.server.cert, "utf8"), key: readFileSync(pki.server.key, "utf8") },
    tenantId,
    apps: [{ clientId, clientSecret }],
    users: ["alice", "carol", "dan"].map((a) => ({
      id: `wine-${a}`,
      userPrincipalName: `${a}@pwsync.test`,
      mail: `${a}@pwsync.test`,
      accountEnabled: true,
    })) as never,
    scryptCost: 1024,
  });
  control = sandboxControl(sandbox.url, caPem);
  graph = await createGraphClient({ tenantId, clientId, clientSecret, authorityHost: sandbox.url, graphBaseUrl: sandbox.url, caPem });
  const keyPair = loadRecipientKeyPair(keys.privatePem);
  resolver = await startResolver({ log: ingest.log, graph, logger: serverLog.logger, matchOrder: ["immutableId", "userPrincipalName", "mail"] });
  executor = await startExecutor({
    log: ingest.log,
    graph,
    logger: serverLog.logger,
    keys: new Map([[keyPair.keyId, keyPair]]),
    config: executorSection.parse({ keysDir: "/unused", retryLimit: 3, backoff: { baseMs: 20, maxMs: 100 } }),
    limiter: new SlidingWindowLimiter(1000, 1000),
    requestTimeoutMs: 10_000,
    signal: shutdown.signal,
  });
}, 600_000);

afterAll(async () => {
  await agent?.stop();
  shutdown.abort();
  await resolver?.stop();
  await executor?.stop();
  graph?.close();
  await sandbox?.close();
  await ingest?.close();
  dc?.release();
});

describe("the real filter under wine, end to end (issue 11)", () => {
  it("agent stopped → 5 password changes in LSA → agent started → every change reaches the sandbox, newest capture winning per user", async () => {
    const work = path.join(root, "work");
    const spool = path.join(work, "spool-e2e");
    mkdirSync(work, { recursive: true });
    // 1. The agent is not running: LSA changes the passwords; the real DLL spools them.
    const r = await runWine(
      [
        path.join(repo, "lsa-filter/build/x64/harness.exe"),
        W(path.join(repo, "lsa-filter/build/x64/pwsync-filter.dll")),
        W(path.join(repo, "lsa-filter/test/vectors")),
        W(work),
        W(path.join(root, "captured")),
        "x64",
        "e2e",
      ],
      { ...wineEnv, PWSYNC_E2E_CHANGES: changes.map((c) => `${c.account}:${c.n}`).join(","), PWSYNC_E2E_PASSWORD_PREFIX: canary },
    );
    expect(r.out).toMatch(/harness x64 e2e: \d+ passed, 0 failed/);
    expect(r.out).not.toContain(canary);
    const files = readdirSync(spool)
      .filter((f) => f.endsWith(".pwsf"))
      .sort();
    expect(files).toHaveLength(changes.length);
    for (const f of files) {
      const bytes = readFileSync(path.join(spool, f));
      expect(bytes.includes(Buffer.from(canary, "utf8")) || bytes.includes(Buffer.from(canary, "utf16le"))).toBe(false);
    }

    // 2. The agent starts (no pipe client needed: everything is in the spool).
    const config = agentConfigSchema.parse({
      agent: { domainController: "dc01.pwsync.test", dataDir: path.join(root, "agent") },
      endpoint: { path: path.join(root, "run", "agent.sock") },
      spool: { dir: spool, protection: "dpapi", scanIntervalMs: 300 },
      ingest: {
        primary: { address: `127.0.0.1:${ingest.ports.primary}`, serverName: "localhost" },
        tls: { caFile: pki.ca.cert, certFile: pki.agents.dc01!.cert, keyFile: pki.agents.dc01!.key },
        sealingPublicKeyFile: path.join(root, "keys", "sealing.pub.pem"),
        heartbeatIntervalMs: 60_000,
      },
      ldap: agentLdapSettings(dc),
    }) as AgentConfig;
    agent = await startAgent(config, agentLog.logger);

    // 3. Every change is captured by ingest and reaches a terminal outcome.
    const captured = await eventually(
      "all spooled changes committed",
      async () => {
        const rows = await ingest.captured();
        return rows.length === changes.length ? rows : undefined;
      },
      120_000,
    );
    const outcomes = await eventually(
      "every change terminal",
      async () => {
        const all = await Promise.all(
          captured.map(async (r) => ({ r, types: (await readStream(ingest.log.db, changeStreamId(r.changeId))).map((e) => e.type) })),
        );
        return all.every((x) => x.types.some(isChangeOutcome)) ? all : undefined;
      },
      120_000,
    );
    for (const o of outcomes) expect(["PasswordSet", "Superseded"]).toContain(o.types.find(isChangeOutcome));
    // In order: drained oldest first, so ingest committed each user's changes in capture order,
    // and no older change of a user was set after a newer one.
    expect(captured.map((r) => r.accountName)).toEqual(changes.map((c) => c.account));
    for (const account of ["alice", "carol", "dan"]) {
      const setAt: bigint[] = [];
      for (const r of captured.filter((x) => x.accountName === account)) {
        const set = (await readStream(ingest.log.db, `change-${r.changeId}`)).find((e) => e.type === "PasswordSet");
        if (set) setAt.push(set.globalPosition);
      }
      expect(setAt.length).toBeGreaterThan(0);
      expect([...setAt].sort((a, b) => (a < b ? -1 : 1))).toEqual(setAt);
    }
    // Ordered by capture: the newest change of each user is set, and Entra holds exactly it.
    for (const account of ["alice", "carol", "dan"]) {
      const newest = Math.max(...changes.filter((c) => c.account === account).map((c) => c.n));
      expect(await control.signIn(`${account}@pwsync.test`, passwordOf({ account, n: newest })), `${account} has change ${newest}`).toBe(true);
      for (let n = 1; n < newest; n++) expect(await control.signIn(`${account}@pwsync.test`, passwordOf({ account, n }))).toBe(false);
    }
    await eventually("spool drained", async () => readdirSync(spool).filter((f) => f.endsWith(".pwsf")).length === 0);
    // 4. No plaintext anywhere we wrote: agent logs, server logs, the agent's data folder.
    expect(agentLog.lines.join("\n")).not.toContain(canary);
    expect(serverLog.lines.join("\n")).not.toContain(canary);
    for (const f of walk(path.join(root, "agent"))) {
      const bytes = readFileSync(f);
      expect(bytes.includes(Buffer.from(canary, "utf8")) || bytes.includes(Buffer.from(canary, "utf16le")), f).toBe(false);
    }
  });
});

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}
