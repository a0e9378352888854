import { execFile, execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

// A Samba AD DC with every service real clients need (test/samba-full/*.sh), for the Samba
// capture source's end-to-end tests. Not the shared LDAP-only DC: its own address and dir.

const run = promisify(execFile);
const scripts = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../test/samba-full");
const keyScript = path.resolve(scripts, "../../samba/gpg-key.sh");

export interface FullSambaDc {
  dir: string;
  env: Record<string, string>;
  ldapsUrl: string;
  baseDn: string;
  bindDn: string;
  bindPasswordFile: string;
  caFile: string;
  serverName: string;
  /** Environment for local tools that write passwords (the DC keyring, Kerberos config). */
  toolEnv: NodeJS.ProcessEnv;
  admin(...args: string[]): Promise<string>;
  start(): void;
  stop(): void;
}

function parseEnv(file: string): Record<string, string> {
  return Object.fromEntries(
    readFileSync(file, "utf8")
      .split("\n")
      .filter((l) => l.includes("="))
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
}

function dcDir(): string {
  const hash = createHash("sha256");
  for (const f of [path.join(scripts, "provision.sh"), keyScript]) hash.update(readFileSync(f));
  return path.join(tmpdir(), `pwsync-samba-full-${hash.digest("hex").slice(0, 10)}`);
}

/**
 * One test file at a time per machine uses this DC (several checkouts run the suite at once
 * here): an exclusive flock held by a child process until `release()` — or until this process
 * dies, which closes the child's stdin and so releases the lock.
 */
export async function lockFullSambaDc(): Promise<{ release(): void }> {
  const child = spawn("flock", ["-x", `${dcDir()}.lock`, "-c", "echo locked; exec cat >/dev/null"], { stdio: ["pipe", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.once("data", () => resolve());
    child.once("exit", (code) => reject(new Error(`flock exited (${code})`)));
  });
  return { release: () => child.stdin.end() };
}

/** Provisions once (cached by the scripts' hash: ~20 s) and starts the DC (~3 s). Hold lockFullSambaDc() first. */
export function startFullSambaDc(): FullSambaDc {
  const dir = dcDir();
  execFileSync("bash", [path.join(scripts, "provision.sh"), dir], { stdio: ["ignore", "ignore", "inherit"], timeout: 600_000 });
  const start = () => execFileSync("bash", [path.join(scripts, "start.sh"), dir], { stdio: ["ignore", "ignore", "inherit"], timeout: 120_000 });
  start();
  const env = parseEnv(path.join(dir, "env"));
  const toolEnv = { ...process.env, GNUPGHOME: env.SAMBA_GNUPG_DC!, KRB5_CONFIG: env.SAMBA_KRB5_CONF! };
  return {
    dir,
    env,
    ldapsUrl: `ldaps://${env.SAMBA_LISTEN}:636`,
    baseDn: env.SAMBA_BASE_DN!,
    bindDn: env.SAMBA_BIND_DN!,
    bindPasswordFile: path.join(dir, "bind.secret"),
    caFile: env.SAMBA_CA!,
    serverName: env.SAMBA_HOSTNAME!,
    toolEnv,
    admin: async (...args) => (await run("samba-tool", [...args, "-s", env.SAMBA_CONF!, "-H", `tdb://${env.SAMBA_SAM!}`], { env: toolEnv })).stdout,
    start,
    stop: () => execFileSync("bash", [path.join(scripts, "stop.sh"), dir], { stdio: "ignore", timeout: 60_000 }),
  };
}

export interface ClientResult {
  ok: boolean;
  output: string;
}

async function attempt(file: string, args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<ClientResult> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { env, timeout: 60_000 }, (err, stdout, stderr) => resolve({ ok: !err, output: `${stdout}${stderr}` }));
    child.stdin?.end(input ?? "");
  });
}

/**
 * The real, unmodified clients a user or admin changes a password with. Each returns whether
 * the DC accepted the change. Passwords go through stdin where the client allows it.
 */
export function clients(dc: FullSambaDc) {
  const e = dc.env;
  const utf16b64 = (p: string) => Buffer.from(`"${p}"`, "utf16le").toString("base64");
  return {
    kpasswd: (user: string, oldPw: string, newPw: string) => attempt("kpasswd", [`${user}@${e.SAMBA_REALM}`], dc.toolEnv, `${oldPw}\n${newPw}\n${newPw}\n`),
    smbpasswd: (user: string, oldPw: string, newPw: string) =>
      attempt("smbpasswd", ["-s", "-r", e.SAMBA_LISTEN!, "-U", user], dc.toolEnv, `${oldPw}\n${newPw}\n${newPw}\n`),
    sambaToolPassword: (user: string, oldPw: string, newPw: string) =>
      attempt(
        "samba-tool",
        ["user", "password", "-s", e.SAMBA_CONF!, `--ipaddress=${e.SAMBA_LISTEN}`, "-U", `${e.SAMBA_DOMAIN}/${user}%${oldPw}`, `--newpassword=${newPw}`],
        dc.toolEnv,
      ),
    rpcclient: (user: string, oldPw: string, newPw: string) =>
      attempt("rpcclient", ["-U", `${user}%${oldPw}`, e.SAMBA_LISTEN!, "-c", `chgpasswd3 ${user} ${oldPw} ${newPw}`], dc.toolEnv),
    /** The user's own change over LDAPS: delete the old unicodePwd, add the new one (ldapmodify reads the LDIF on stdin). */
    ldapmodify: (user: string, oldPw: string, newPw: string) =>
      attempt(
        "ldapmodify",
        ["-H", dc.ldapsUrl, "-x", "-D", `${user}@${e.SAMBA_REALM}`, "-w", oldPw],
        { ...dc.toolEnv, LDAPTLS_CACERT: dc.caFile, LDAPTLS_REQCERT: "never" },
        `dn: CN=${user},CN=Users,${dc.baseDn}\nchangetype: modify\ndelete: unicodePwd\nunicodePwd:: ${utf16b64(oldPw)}\n-\nadd: unicodePwd\nunicodePwd:: ${utf16b64(newPw)}\n-\n`,
      ),
    /** An admin's reset on the DC itself (local sam.ldb: this process must find the GPG public key). */
    setpassword: (user: string, newPw: string) =>
      attempt("samba-tool", ["user", "setpassword", user, `--newpassword=${newPw}`, "-s", e.SAMBA_CONF!, "-H", `tdb://${e.SAMBA_SAM!}`], dc.toolEnv),
  };
}
