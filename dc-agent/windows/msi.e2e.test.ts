// The Windows package, installed and exercised under wine (64-bit), as an admin would use it:
//   npm run package:windows (signed with a throw-away certificate) → msiexec /i into a fresh
//   prefix → the service is RUNNING → the installed filter DLL, driven by a small LSA stand-in
//   (test/lsa-standin.c), hands changes over the named pipe to the installed agent, which
//   streams them to a real ingest (mTLS) after looking the accounts up in a real Samba AD DC;
//   the sandbox tenant sets them → service stopped (cleanly) → changes spool (DPAPI) → service
//   started → the spool drains through pwsync-service.exe's DPAPI helper → msiexec /x leaves
//   no service, no installed files, and Notification Packages as it was.
// What wine cannot show (LSASS itself, RunAsPPL, ACL enforcement, pipe squatting by another
// account) is in dc-agent/README.md's manual checklist.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startStack, type Stack } from "@pwsync/devstack";
import { sandboxControl } from "@pwsync/sandbox-tenant";
import { eventually } from "@pwsync/testkit";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { acquireSambaDc, type SambaDc } from "../src/test-support/samba.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");
const version = (JSON.parse(readFileSync(path.join(repo, "dc-agent/package.json"), "utf8")) as { version: string }).version;

const missingTools = ["wine", "wineserver", "x86_64-w64-mingw32-gcc"].filter((tool) => spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0);
if (missingTools.length > 0) {
  process.stderr.write(
    `SKIPPED dc-agent/windows/msi.e2e.test.ts: ${missingTools.join(", ")} not installed (bash lsa-filter/scripts/install-toolchain.sh installs them)\n`,
  );
}

const work = mkdtempSync(path.join(tmpdir(), "pwsync-msi-"));
const prefix = path.join(work, "prefix");
const driveC = path.join(prefix, "drive_c");
const programData = path.join(driveC, "ProgramData/pwsync");
const spoolDir = path.join(programData, "spool");
const wineEnv: NodeJS.ProcessEnv = { ...process.env, WINEPREFIX: prefix, WINEDEBUG: "-all", WINEDLLOVERRIDES: "mscoree,mshtml=" };
delete wineEnv.DISPLAY;

const LSA_KEY = "HKLM\\SYSTEM\\CurrentControlSet\\Control\\Lsa";
const SERVICE = "pwsync-dc-agent";
const canary = `Msi-${randomBytes(5).toString("hex")}`;
let serial = 0;
const newPassword = () => `${canary}-${++serial}-Aa1!`;
const passwords: string[] = [];

function wine(args: string[], options: { input?: string; timeoutMs?: number } = {}): { status: number | null; out: string } {
  const r = spawnSync("wine", args, { env: wineEnv, input: options.input ?? "", encoding: "utf8", timeout: options.timeoutMs ?? 300_000 });
  return { status: r.status, out: `${r.stdout ?? ""}${r.stderr ?? ""}`.replace(/\r/g, "") };
}

function notificationPackages(): string[] | undefined {
  const r = wine(["reg", "query", LSA_KEY, "/v", "Notification Packages"]);
  const m = /Notification Packages\s+REG_MULTI_SZ\s+(.*)/.exec(r.out);
  return m ? m[1]!.trim().split("\\0").filter(Boolean) : undefined;
}

function serviceState(): string {
  const m = /STATE\s+:\s+\d+\s+(\w+)/.exec(wine(["sc", "query", SERVICE]).out);
  return m ? m[1]! : "ABSENT";
}

function agentLog(): string {
  const file = path.join(programData, "logs/dc-agent.log");
  return existsSync(file) ? readFileSync(file, "utf8") : "";
}

function consoleLog(): string {
  const file = path.join(programData, "logs/dc-agent-console.log");
  return existsSync(file) ? readFileSync(file, "utf8") : "";
}

/** Runs the LSA stand-in: each change goes through the installed filter's exports. */
function changePasswords(changes: Array<{ account: string; password: string }>): void {
  const r = wine(["C:\\lsa-standin.exe", "4000"], { input: changes.map((c) => `${c.account}\t${c.password}\n`).join("") });
  expect(r.out).toContain(`notified ${changes.length}`);
}

function spooled(): string[] {
  return existsSync(spoolDir) ? readdirSync(spoolDir) : [];
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

const winPath = (...parts: string[]) => ["C:\\ProgramData\\pwsync", ...parts].join("\\");

describe.skipIf(missingTools.length > 0)("Windows package under wine: msiexec /i, deliver, spool, drain, msiexec /x", () => {
  let stack: Stack;
  let dc: SambaDc;
  let control: ReturnType<typeof sandboxControl>;
  let keeper: ChildProcess | undefined;
  let msi: string;
  let signer: { cert: string; key: string };
  const users = ["alice", "carol"].map((name) => ({
    account: name,
    spec: {
      id: randomUUID(),
      userPrincipalName: `${name}@pwsync.test`,
      mail: `${name}@pwsync.test`,
      onPremisesImmutableId: randomBytes(16).toString("base64"),
    },
  }));

  beforeAll(async () => {
    // 1. The package, as `npm run package:windows` builds it, signed with a throw-away certificate.
    signer = { cert: path.join(work, "sign.pem"), key: path.join(work, "sign.key") };
    const openssl = spawnSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        signer.key,
        "-out",
        signer.cert,
        "-days",
        "2",
        "-subj",
        "/CN=pwsync test code signing (throw-away)",
        "-addext",
        "extendedKeyUsage=codeSigning",
        "-addext",
        "keyUsage=digitalSignature",
      ],
      { encoding: "utf8" },
    );
    expect(openssl.status, openssl.stderr).toBe(0);
    const started = Date.now();
    const build = spawnSync("bash", [path.join(repo, "dc-agent/windows/package.sh")], {
      env: {
        ...process.env,
        PWSYNC_SIGN_CERT: signer.cert,
        PWSYNC_SIGN_KEY: signer.key,
        PWSYNC_PACKAGE_OUT: path.join(work, "dist"),
        PWSYNC_PACKAGE_SKIP_NPM: "1",
      },
      encoding: "utf8",
      timeout: 600_000,
    });
    expect(build.status, `${build.stdout}\n${build.stderr}`).toBe(0);
    msi = path.join(work, "dist", `pwsync-dc-${version}-x64.msi`);
    process.stdout.write(`[msi e2e] package built in ${Math.round((Date.now() - started) / 1000)} s: ${(statSync(msi).size / 1e6).toFixed(1)} MB\n`);
    const standin = spawnSync(
      "x86_64-w64-mingw32-gcc",
      ["-O2", "-Wall", "-Werror", "-o", path.join(work, "lsa-standin.exe"), path.join(here, "test/lsa-standin.c")],
      { encoding: "utf8" },
    );
    expect(standin.status, standin.stderr).toBe(0);

    // 2. The other side: a real Samba AD DC (the agent's LDAP lookups) and the server side with
    //    the sandbox tenant knowing the same users.
    dc = acquireSambaDc();
    stack = await startStack({
      dataDir: path.join(work, "stack"),
      ports: "random",
      agents: ["dc01"],
      sandbox: { users: users.map((u) => u.spec), scryptCost: 1024 },
      // Ingest lets an agent touch only its domains; the Samba DC's users are @pwsync.test.
      overlay: { ingest: { agentScopes: { dc01: ["pwsync.test"] } } },
    });
    control = sandboxControl(stack.sandboxUrl!, readFileSync(stack.pki.ca.cert));

    // 3. A fresh prefix set to Windows 10 (Node refuses wine's default Windows 7), with the
    //    Notification Packages a DC has before we come.
    wine(["wineboot", "-i"]);
    wine(["winecfg", "/v", "win10"]);
    expect(wine(["reg", "add", LSA_KEY, "/v", "Notification Packages", "/t", "REG_MULTI_SZ", "/d", "scecli\\0rassfm", "/f"]).status).toBe(0);
    copyFileSync(msi, path.join(driveC, "pwsync-dc.msi"));
    copyFileSync(path.join(work, "lsa-standin.exe"), path.join(driveC, "lsa-standin.exe"));
    // wine shuts its services down when the last ordinary process of the prefix exits; a
    // sleeping process keeps the prefix "booted" as a running Windows would be.
    keeper = spawn("wine", ["C:\\lsa-standin.exe", "hold"], { env: wineEnv, stdio: "ignore" });

    // 4. Step 1 of the three-step install: the admin's configuration and the files it names.
    mkdirSync(path.join(programData, "tls"), { recursive: true });
    const endpoint = stack.agentEndpoint("dc01");
    writeFileSync(path.join(programData, "tls/ca.pem"), endpoint.caPem);
    writeFileSync(path.join(programData, "tls/agent.pem"), endpoint.certPem);
    writeFileSync(path.join(programData, "tls/agent-key.pem"), endpoint.keyPem);
    writeFileSync(path.join(programData, "tls/sealing-public.pem"), stack.recipient.key.export({ type: "spki", format: "pem" }));
    copyFileSync(dc.caFile, path.join(programData, "tls/samba-ca.pem"));
    copyFileSync(dc.bindPasswordFile, path.join(programData, "ldap-bind-password.txt"));
    const config = {
      agent: { domainController: "dc01.pwsync.test", dataDir: winPath("dc-agent") },
      spool: { dir: winPath("spool"), protection: "dpapi", scanIntervalMs: 1000 },
      ingest: {
        primary: { address: stack.ingestAddress, serverName: "localhost" },
        tls: { caFile: winPath("tls", "ca.pem"), certFile: winPath("tls", "agent.pem"), keyFile: winPath("tls", "agent-key.pem") },
        sealingPublicKeyFile: winPath("tls", "sealing-public.pem"),
        connectionFailDelayMs: 1000,
        heartbeatIntervalMs: 5000,
      },
      ldap: {
        url: dc.ldapsUrl,
        serverName: dc.serverName,
        baseDn: dc.baseDn,
        caFile: winPath("tls", "samba-ca.pem"),
        bindDn: dc.bindDn,
        bindPasswordFile: winPath("ldap-bind-password.txt"),
      },
      log: { file: winPath("logs", "dc-agent.log") },
    };
    writeFileSync(path.join(programData, "dc-agent.yaml"), JSON.stringify(config, null, 2)); // JSON is YAML
  }, 900_000);

  // On a failure, what each side saw (never a password: the agent and services redact).
  afterEach(({ task }) => {
    if (task.result?.state !== "fail") return;
    const tail = (text: string, lines = 40) => text.trimEnd().split("\n").slice(-lines).join("\n");
    const serviceLogs = stack
      ? filesUnder(stack.logsDir)
          .map((f) => `--- ${path.basename(f)}\n${tail(readFileSync(f, "utf8"), 15)}`)
          .join("\n")
      : "";
    process.stderr.write(
      `[msi e2e] diagnostics for "${task.name}"\n--- service ${serviceState()}, spool: ${spooled().join(" ") || "(empty)"}\n` +
        `--- dc-agent-console.log\n${tail(consoleLog())}\n--- dc-agent.log\n${tail(agentLog())}\n${serviceLogs}\n`,
    );
  });

  afterAll(async () => {
    keeper?.kill();
    spawnSync("wineserver", ["-k"], { env: wineEnv });
    await stack?.stop();
    dc?.release();
    rmSync(work, { recursive: true, force: true });
  }, 120_000);

  it("the MSI is signed with the given certificate and carries the package version", () => {
    const verify = spawnSync("osslsigncode", ["verify", "-CAfile", signer.cert, "-in", msi], { encoding: "utf8" });
    expect(verify.stdout).toContain("Signature verification: ok");
    const props = spawnSync("msiinfo", ["export", msi, "Property"], { encoding: "utf8" }).stdout;
    expect(props).toMatch(new RegExp(`ProductVersion\\t${version.replace(/\./g, "\\.")}`));
  });

  it("msiexec /i installs the service RUNNING, the filter, and appends to Notification Packages", async () => {
    const install = wine(["msiexec", "/i", "C:\\pwsync-dc.msi", "/qn"], { timeoutMs: 600_000 });
    expect(install.status, install.out).toBe(0);
    for (const f of [
      "Program Files/pwsync/dc-agent.exe",
      "Program Files/pwsync/pwsync-service.exe",
      "Program Files/pwsync/pwsync-pipe.exe",
      "Program Files/pwsync/dc-agent.example.yaml",
      "windows/system32/pwsync-filter.dll",
    ]) {
      expect(existsSync(path.join(driveC, f)), f).toBe(true);
    }
    for (const f of [
      "Program Files/pwsync/dc-agent.exe",
      "Program Files/pwsync/pwsync-service.exe",
      "Program Files/pwsync/pwsync-pipe.exe",
      "windows/system32/pwsync-filter.dll",
    ]) {
      expect(spawnSync("osslsigncode", ["verify", "-CAfile", signer.cert, "-in", path.join(driveC, f)], { encoding: "utf8" }).stdout, f).toContain(
        "Signature verification: ok",
      );
    }
    expect(notificationPackages()).toEqual(["scecli", "rassfm", "pwsync-filter"]);
    expect(wine(["reg", "query", `HKLM\\SYSTEM\\CurrentControlSet\\Services\\${SERVICE}`, "/v", "ImagePath"]).out).toContain(
      '"C:\\Program Files\\pwsync\\pwsync-service.exe"',
    );
    await eventually("service RUNNING", async () => serviceState() === "RUNNING", 60_000, 1000);
    await eventually("agent start line", async () => agentLog().includes(`dc-agent v${version} started`), 120_000, 1000);
    expect(agentLog()).not.toContain("served without pwsync-pipe.exe"); // the service named the pipe helper
  }, 900_000);

  it("a change made through the installed filter reaches the sandbox tenant", async () => {
    expect(serviceState()).toBe("RUNNING");
    const changes = users.map((u) => ({ account: u.account, password: newPassword() }));
    passwords.push(...changes.map((c) => c.password));
    changePasswords(changes);
    for (const [i, change] of changes.entries()) {
      await eventually(`${change.account}'s new password set`, async () => control.signIn(users[i]!.spec.userPrincipalName, change.password), 120_000, 500);
    }
    expect(spooled().filter((n) => n.endsWith(".pwsf"))).toEqual([]);
  }, 300_000);

  it("stopped cleanly, changes spool; started again, the spool drains through the DPAPI helper", async () => {
    expect(wine(["sc", "stop", SERVICE]).status).toBe(0);
    await eventually("service STOPPED", async () => serviceState() === "STOPPED", 60_000, 1000);
    // A clean stop: the agent ran its own shutdown (not a terminate) and exited 0.
    expect(agentLog()).toContain('"msg":"dc-agent stopped"');
    expect(consoleLog()).toContain("agent exited with code 0; service stopped");
    expect(consoleLog()).not.toContain("terminating it");

    const changes = users.map((u) => ({ account: u.account, password: newPassword() }));
    passwords.push(...changes.map((c) => c.password));
    changePasswords(changes);
    expect(spooled().filter((n) => n.endsWith(".pwsf"))).toHaveLength(2);
    expect(await control.signIn(users[0]!.spec.userPrincipalName, changes[0]!.password)).toBe(false);

    expect(wine(["sc", "start", SERVICE]).status).toBe(0);
    await eventually("service RUNNING again", async () => serviceState() === "RUNNING", 60_000, 1000);
    for (const [i, change] of changes.entries()) {
      await eventually(`${change.account}'s spooled password set`, async () => control.signIn(users[i]!.spec.userPrincipalName, change.password), 180_000, 500);
    }
    expect(spooled()).toEqual([]); // drained: nothing left, nothing renamed *.rejected
    expect(agentLog()).not.toContain("spool-undecryptable");
  }, 600_000);

  it("no plaintext password in any file the package wrote", () => {
    const files = filesUnder(programData);
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const bytes = readFileSync(file);
      for (const pw of passwords) {
        expect(bytes.includes(Buffer.from(pw, "utf8")), `${file} holds a password (UTF-8)`).toBe(false);
        expect(bytes.includes(Buffer.from(pw, "utf16le")), `${file} holds a password (UTF-16LE)`).toBe(false);
      }
    }
  });

  it("msiexec /x removes the service and the files, and only our entry from Notification Packages", () => {
    const remove = wine(["msiexec", "/x", "C:\\pwsync-dc.msi", "/qn"], { timeoutMs: 600_000 });
    expect(remove.status, remove.out).toBe(0);
    expect(serviceState()).toBe("ABSENT");
    expect(notificationPackages()).toEqual(["scecli", "rassfm"]);
    expect(existsSync(path.join(driveC, "Program Files/pwsync"))).toBe(false);
    expect(existsSync(path.join(driveC, "windows/system32/pwsync-filter.dll"))).toBe(false);
    expect(wine(["reg", "query", "HKLM\\SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\pwsync-filter"]).status).not.toBe(0);
    expect(wine(["reg", "query", "HKLM\\SOFTWARE\\pwsync\\Filter"]).status).not.toBe(0);
  }, 600_000);
});
