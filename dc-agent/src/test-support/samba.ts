import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

// The real Samba AD DC the LDAP and end-to-end tests talk to (dc-agent/test/samba/*.sh).

const scripts = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../test/samba");

export interface SambaDc {
  ldapsUrl: string;
  /** Plain LDAP port, for StartTLS. */
  ldapUrl: string;
  baseDn: string;
  bindDn: string;
  bindPasswordFile: string;
  caFile: string;
  /** Name in the DC's self-signed certificate (it lists no IP). */
  serverName: string;
  dn(cn: string): string;
  release(): void;
}

function parseEnv(file: string): Record<string, string> {
  return Object.fromEntries(
    readFileSync(file, "utf8")
      .split("\n")
      .filter((l) => l.includes("="))
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
}

/** Provisions (once, cached by the provisioning script's hash) and starts the shared DC. */
export function acquireSambaDc(): SambaDc {
  const version = createHash("sha256")
    .update(readFileSync(path.join(scripts, "provision.sh")))
    .digest("hex")
    .slice(0, 10);
  const dir = path.join(tmpdir(), `pwsync-samba-${version}`);
  execFileSync("bash", [path.join(scripts, "acquire.sh"), dir, String(process.pid)], { stdio: ["ignore", "ignore", "inherit"], timeout: 600_000 });
  const env = parseEnv(path.join(dir, "env"));
  const baseDn = env.SAMBA_BASE_DN!;
  return {
    ldapsUrl: `ldaps://${env.SAMBA_LISTEN}:636`,
    ldapUrl: `ldap://${env.SAMBA_LISTEN}:389`,
    baseDn,
    bindDn: env.SAMBA_BIND_DN!,
    bindPasswordFile: path.join(dir, "bind.secret"),
    caFile: env.SAMBA_CA!,
    serverName: env.SAMBA_HOSTNAME!,
    dn: (cn) => `CN=${cn},CN=Users,${baseDn}`,
    release: () => execFileSync("bash", [path.join(scripts, "release.sh"), dir, String(process.pid)], { stdio: "ignore", timeout: 60_000 }),
  };
}

/** The agent's `ldap` settings for this DC: scope is the "Password Sync" group, as the tests seed it. */
export function agentLdapSettings(dc: SambaDc) {
  return {
    url: dc.ldapsUrl,
    baseDn: dc.baseDn,
    caFile: dc.caFile,
    serverName: dc.serverName,
    bindDn: dc.bindDn,
    bindPasswordFile: dc.bindPasswordFile,
    groups: [dc.dn("Password Sync")],
  };
}
