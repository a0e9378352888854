import { execFile } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startStack, type SandboxUserSpec, type Stack } from "@pwsync/devstack";
import { openEventLog, type EventLog } from "@pwsync/eventlog";
import { sandboxControl } from "@pwsync/sandbox-tenant";
import { eventually } from "@pwsync/testkit";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { startAgent, type RunningAgent } from "../agent.js";
import { agentConfigSchema, type AgentConfig } from "../config.js";
import { Directory } from "../ldap/directory.js";
import { capturingLogger } from "../test-support/capturingLogger.js";
import { runVerify } from "../verify/verify.js";
import { clients, lockFullSambaDc, startFullSambaDc, type FullSambaDc } from "../test-support/sambaFull.js";

// A real Samba AD DC (LDAP, Kerberos, RPC, SMB) changed by real, unmodified clients; the
// dc-agent capturing through `samba-tool user syncpasswords`; the whole server side as
// processes; the sandbox tenant's sign-in as the observable outcome.

const here = path.dirname(fileURLToPath(import.meta.url));
const canary = `Smb${randomBytes(4).toString("hex")}`;
let serial = 0;
/** A fresh password the DC's complexity rules accept, carrying the run's canary. */
const pw = () => `${canary}-${++serial}-Xy!`;
// Fixed names, reused by every run on the kept DC: a deleted account stays a tombstone that
// syncpasswords replays on every first run, so deleting test users would slow later runs down.
const name = (role: string) => `${role}-e2e`;
const ROLES = ["kp", "smb", "st", "ldap", "rpc", "hist", "tri", "stop", "dcre", "base"] as const;
const initial = new Map<string, string>();

let dc: FullSambaDc;
let dcLock: { release(): void } | undefined;
let stack: Stack;
let log: EventLog;
let agent: RunningAgent | undefined;
let config: AgentConfig;
let control: ReturnType<typeof sandboxControl>;
let agentDir: string;
const agentLog = capturingLogger();
const upn = (user: string) => `${user}@${dc.env.SAMBA_REALM!.toLowerCase()}`;

async function changeEvents(user: string): Promise<number> {
  const r = await sql<{ n: string }>`SELECT count(*) AS n FROM events WHERE type = 'ChangeCaptured' AND data->>'accountName' = ${user}`.execute(log.db);
  return Number(r.rows[0]!.n);
}
const signsIn = (user: string, password: string) =>
  eventually(`${user} signs in with the new password`, async () => (await control.signIn(upn(user), password)) || undefined, 90_000, 500);

beforeAll(async () => {
  dcLock = await lockFullSambaDc();
  dc = startFullSambaDc();
  // Tombstones of accounts deleted by older runs would each be replayed by the first run.
  await dc.admin("domain", "tombstones", "expunge", "--tombstone-lifetime=0").catch(() => {});
  const existing = new Set((await dc.admin("user", "list")).split("\n").map((u) => u.trim()));
  for (const role of ROLES) {
    const p = pw();
    initial.set(name(role), p);
    if (existing.has(name(role))) await dc.admin("user", "setpassword", name(role), `--newpassword=${p}`);
    else await dc.admin("user", "create", name(role), p);
  }
  // The sandbox knows the same people, matched by the immutable id Entra Connect derives from objectGUID.
  const root = mkdtempSync(path.join(tmpdir(), "pwsync-samba-e2e-"));
  const ldap = { url: dc.ldapsUrl, baseDn: dc.baseDn, caFile: dc.caFile, serverName: dc.serverName, bindDn: dc.bindDn, bindPasswordFile: dc.bindPasswordFile };
  const directory = new Directory(
    agentConfigSchema.parse({
      agent: { domainController: "x", dataDir: "x" },
      ingest: { primary: { address: "x:1" }, tls: { caFile: "x", certFile: "x", keyFile: "x" }, sealingPublicKeyFile: "x" },
      ldap,
    }).ldap,
  );
  const users: SandboxUserSpec[] = [];
  for (const role of ROLES) {
    const r = await directory.lookup(name(role));
    if (r.kind !== "matched" || !r.account.objectGuid) throw new Error(`no ${name(role)} in the DC`);
    users.push({ id: randomUUID(), userPrincipalName: upn(name(role)), mail: upn(name(role)), onPremisesImmutableId: r.account.objectGuid.toString("base64") });
  }
  await directory.close();
  stack = await startStack({
    dataDir: path.join(root, "stack"),
    ports: "random",
    sandbox: { users, scryptCost: 1024 },
    agents: ["dc01"],
    overlay: { ingest: { agentScopes: { dc01: ["sambae2e.test"] } } },
  });
  log = await openEventLog(stack.databaseUrl, { migrate: false, maxConnections: 2 });
  control = sandboxControl(stack.sandboxUrl!, readFileSync(stack.pki.ca.cert));
  agentDir = path.join(root, "agent");
  const keys = path.join(stack.dataDir, "keys");
  config = agentConfigSchema.parse({
    agent: { domainController: "e2edc.sambae2e.test", dataDir: agentDir },
    endpoint: { path: path.join(root, "agent.sock") },
    ingest: {
      primary: { address: stack.ingestAddress, serverName: "localhost" },
      tls: { caFile: stack.pki.ca.cert, certFile: stack.pki.agents.dc01!.cert, keyFile: stack.pki.agents.dc01!.key },
      sealingPublicKeyFile: path.join(keys, readdirSync(keys).find((n) => n.endsWith(".pub.pem"))!),
      timeoutMs: 5000,
      connectionFailDelayMs: 500,
      heartbeatIntervalMs: 2000,
    },
    ldap,
    samba: {
      smbConf: dc.env.SAMBA_CONF,
      gnupgHome: dc.env.SAMBA_GNUPG_AGENT,
      dcGnupgHome: dc.env.SAMBA_GNUPG_DC,
      hookSocket: path.join(root, "hook", "samba.sock"),
      hookScript: path.resolve(here, "../../samba/pwsync-samba-hook.mjs"),
      restartBackoff: { minMs: 500, maxMs: 5000 },
      alarmAfterMs: 3000,
    },
  }) as AgentConfig;
  agent = await startAgent(config, agentLog.logger);
  try {
    // Generous: each account costs a hook process and a GPG decryption, slow on a loaded CI machine.
    await eventually(
      "first run recorded every account",
      async () => agentLog.records().some((r) => r.msg === "samba first run done: accounts recorded; live capture starts"),
      400_000,
      200,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; agent log:\n${agentLog.lines.slice(-15).join("")}`);
  }
}, 1_500_000);

afterAll(async () => {
  await agent?.stop();
  await log?.close();
  await stack?.stop();
  dc?.stop();
  dcLock?.release();
});

describe("Samba AD DC → dc-agent (syncpasswords) → Entra sandbox", () => {
  it("first run records the accounts' current passwords without syncing any", async () => {
    const base = name("base");
    expect(await changeEvents(base)).toBe(0);
    expect(await control.signIn(upn(base), initial.get(base)!)).toBe(false);
  });

  const cases = [
    ["kpasswd (Kerberos change password)", "kp", "kpasswd"],
    ["smbpasswd -r (SAMR over SMB)", "smb", "smbpasswd"],
    ["samba-tool user password", "st", "sambaToolPassword"],
    ["ldapmodify unicodePwd over LDAPS", "ldap", "ldapmodify"],
    ["rpcclient chgpasswd3 (SAMR)", "rpc", "rpcclient"],
  ] as const;
  for (const [label, role, client] of cases) {
    it(`a password changed with ${label} signs in at the tenant`, async () => {
      const user = name(role);
      const next = pw();
      const r = await clients(dc)[client](user, initial.get(user)!, next);
      expect(r, r.output).toMatchObject({ ok: true });
      await signsIn(user, next);
      expect(await control.signIn(upn(user), initial.get(user)!)).toBe(false);
    }, 120_000);
  }

  it("a change the DC rejects (history, complexity) never arrives", async () => {
    const user = name("hist");
    const c = clients(dc);
    const second = pw();
    expect((await c.kpasswd(user, initial.get(user)!, second)).ok).toBe(true);
    await signsIn(user, second);
    const before = await changeEvents(user);
    // Back to the previous password: in the history (24), refused. Then one without complexity.
    const history = await c.kpasswd(user, second, initial.get(user)!);
    expect(history.ok, history.output).toBe(false);
    expect(history.output).toMatch(/history/i);
    const simple = await c.smbpasswd(user, second, "aaaaaaaa");
    expect(simple.ok).toBe(false);
    // A barrier: a later accepted change of someone else has arrived, so anything earlier would have too.
    const barrier = name("kp");
    const p = pw();
    expect((await c.setpassword(barrier, p)).ok).toBe(true);
    await signsIn(barrier, p);
    expect(await changeEvents(user)).toBe(before);
    expect(await control.signIn(upn(user), second)).toBe(true);
    expect(await control.signIn(upn(user), initial.get(user)!)).toBe(false);
  }, 240_000);

  it("three quick resets: the last password wins", async () => {
    const user = name("tri");
    const c = clients(dc);
    const ps = [pw(), pw(), pw()];
    for (const p of ps) expect((await c.setpassword(user, p)).ok).toBe(true);
    await signsIn(user, ps[2]!);
    // Whatever syncpasswords coalesced, nothing older lands after the last.
    await eventually(
      "every change of the user terminal",
      async () => {
        const r = await sql<{
          n: string;
        }>`SELECT count(*) AS n FROM events c WHERE c.type = 'ChangeCaptured' AND c.data->>'accountName' = ${user} AND NOT EXISTS (SELECT 1 FROM events t WHERE t.stream_id = c.stream_id AND t.type IN ('PasswordSet','Superseded','ResetFailed','ResolutionFailed'))`.execute(
          log.db,
        );
        return Number(r.rows[0]!.n) === 0 || undefined;
      },
      60_000,
      500,
    );
    expect(await control.signIn(upn(user), ps[2]!)).toBe(true);
    expect(await control.signIn(upn(user), ps[0]!)).toBe(false);
  }, 180_000);

  it("changes made while the agent is stopped are all delivered when it starts again", async () => {
    await agent!.stop();
    agent = undefined;
    const c = clients(dc);
    const a = name("stop");
    const b = name("st");
    const pa = pw();
    const pb = pw();
    expect((await c.setpassword(a, pa)).ok).toBe(true);
    expect((await c.setpassword(b, pb)).ok).toBe(true);
    agent = await startAgent(config, agentLog.logger);
    await signsIn(a, pa);
    await signsIn(b, pb);
  }, 240_000);

  it("a DC restarted right after a change loses nothing", async () => {
    const c = clients(dc);
    const user = name("dcre");
    const p = pw();
    expect((await c.setpassword(user, p)).ok).toBe(true);
    dc.stop();
    dc.start();
    await signsIn(user, p);
    // syncpasswords was restarted (or reconnected) and keeps delivering.
    const after = pw();
    expect((await c.kpasswd(user, p, after)).ok).toBe(true);
    await signsIn(user, after);
  }, 240_000);

  it("syncpasswords killed -9: the agent restarts it, and the next change still arrives", async () => {
    const pid = Number.parseInt(readFileSync(path.join(agentDir, "samba", "syncpasswords-cache.ldb.pid"), "utf8").trim(), 10);
    const killedAt = new Date().toISOString();
    process.kill(pid, "SIGKILL");
    await eventually(
      "restart logged",
      async () => agentLog.records().some((r) => r.msg === "samba capture down; restarting" && String(r.time) >= killedAt),
      30_000,
      200,
    );
    const user = name("kp");
    const p = pw();
    expect((await clients(dc).setpassword(user, p)).ok).toBe(true);
    await signsIn(user, p);
  }, 180_000);

  it("dc-agent verify checks the key ids, both keyrings, the hook, syncpasswords and the last delivery", async () => {
    const results = await runVerify(config);
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(results.map((r) => r.check)).toEqual(
      expect.arrayContaining([
        "samba: password hash gpg key ids",
        "samba: agent keyring has the secret key",
        "samba: DC keyring has the public key",
        "samba: syncpasswords running",
        "samba: last delivery",
      ]),
    );
    // A DC keyring without the key: verify names the consequence.
    const broken = await runVerify({ ...config, samba: { ...config.samba!, dcGnupgHome: path.join(agentDir, "no-keyring") } });
    expect(broken.find((r) => r.check === "samba: DC keyring has the public key")).toMatchObject({
      ok: false,
      detail: expect.stringMatching(/every password change on this DC fails/),
    });
  }, 60_000);

  it("samba-bulk-sync (the CLI, as an admin runs it) asks first, then syncs the current passwords, audited", async () => {
    const base = name("base");
    const configFile = path.join(agentDir, "..", "agent.yaml");
    writeFileSync(configFile, stringify(config));
    const cli = (...args: string[]) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        execFile(
          process.execPath,
          ["--import", "tsx", path.resolve(here, "../main.ts"), "samba-bulk-sync", ...args],
          { env: { ...process.env, PWSYNC_CONFIG: configFile, SUDO_USER: "alice-admin" }, timeout: 300_000 },
          (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` }),
        );
      });
    const ask = await cli();
    expect(ask, ask.out).toMatchObject({ code: 2 });
    expect(ask.out).toMatch(/sets the CURRENT password of up to \d+ accounts/);
    expect(await changeEvents(base)).toBe(0);
    const run = await cli("--yes", "--per-minute", "6000");
    expect(run, run.out).toMatchObject({ code: 0 });
    expect(run.out).toMatch(/done in \d+ s: \d+ queued/);
    await signsIn(base, initial.get(base)!);
    const audit = readFileSync(path.join(agentDir, "samba", "audit.log"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(audit[0]!.event).toBe("bulkSyncStarted");
    expect(audit.at(-1)!.event).toBe("bulkSyncFinished");
    expect(audit[0]).toMatchObject({ by: "alice-admin", perMinute: 6000 });
    expect(Number(audit[1]!.queued)).toBeGreaterThan(0);
  }, 300_000);

  it("dc-agent's disk and logs never hold a password (canary scan)", async () => {
    const needles = [Buffer.from(canary, "utf8"), Buffer.from(canary, "utf16le")];
    const hits: string[] = [];
    const walk = (dir: string) => {
      for (const n of readdirSync(dir)) {
        const p = path.join(dir, n);
        const st = statSync(p);
        if (st.isDirectory()) walk(p);
        else if (st.isFile() && needles.some((needle) => readFileSync(p).includes(needle))) hits.push(p);
      }
    };
    walk(agentDir);
    expect(hits).toEqual([]);
    expect(agentLog.lines.join("\n")).not.toContain(canary);
    expect(agentLog.records().some((r) => String(r.msg).startsWith("change sealed and queued"))).toBe(true);
    for (const f of readdirSync(stack.logsDir)) expect(readFileSync(path.join(stack.logsDir, f), "utf8")).not.toContain(canary);
  });
});
