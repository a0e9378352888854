import { mkdir, readFile, writeFile, access } from "node:fs/promises";
import { join } from "node:path";
import { createCa, issueAdminCert, issueAgentCert, issueServerCert, type CertAndKey } from "./certs.js";
import { AGENT_NAME } from "./names.js";

export interface DevPkiOptions {
  agents?: string[];
  serverNames?: string[];
  /** Admin API users: client certificates with the admin role (see issueAdminCert). */
  admins?: string[];
}

export interface CertPaths {
  cert: string;
  key: string;
}

export interface DevPkiPaths {
  dir: string;
  /** Issues server certificates: what agents and admin clients trust to reach ingest / admin. */
  ca: CertPaths;
  /** Issues agent certificates only: ingest's client CA. */
  agentCa: CertPaths;
  /** Issues admin certificates only: the admin API's client CA. */
  adminCa: CertPaths;
  server: CertPaths;
  agents: Record<string, CertPaths>;
  admins: Record<string, CertPaths>;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

async function writePair(paths: CertPaths, pair: CertAndKey): Promise<void> {
  // Key first with 0600 so a crash never leaves a cert whose key is missing yet "exists" checks pass on the cert.
  await writeFile(paths.key, pair.key, { mode: 0o600 });
  await writeFile(paths.cert, pair.cert, { mode: 0o644 });
}

async function pairExists(paths: CertPaths): Promise<boolean> {
  return (await exists(paths.cert)) && (await exists(paths.key));
}

async function ensureCa(paths: CertPaths, name: string): Promise<{ ca: CertAndKey; isNew: boolean }> {
  if (await pairExists(paths)) return { ca: { cert: await readFile(paths.cert, "utf8"), key: await readFile(paths.key, "utf8") }, isNew: false };
  const ca = await createCa(name);
  await writePair(paths, ca);
  return { ca, isNew: true };
}

/**
 * Three CAs, so that the trust each service places in a client certificate is decided by the
 * TLS layer before any code runs: the server CA (server certificates only; clients verify
 * ingest and admin with it), the agent CA (ingest trusts only it) and the admin CA (the admin
 * API trusts only it). A leaked admin certificate cannot even finish a call at ingest.
 *
 * Creates whatever is missing of a development PKI in `dir` and returns the file paths.
 * Existing files are kept, so repeated calls are cheap and never rotate keys under a running service.
 */
export async function ensureDevPki(dir: string, options: DevPkiOptions = {}): Promise<DevPkiPaths> {
  const agentNames = options.agents ?? [];
  const adminNames = options.admins ?? [];
  for (const name of [...agentNames, ...adminNames]) {
    if (!AGENT_NAME.test(name)) throw new Error(`invalid agent name for a certificate file: ${JSON.stringify(name)}`);
  }
  await mkdir(join(dir, "agents"), { recursive: true, mode: 0o700 });
  if (adminNames.length > 0) await mkdir(join(dir, "admins"), { recursive: true, mode: 0o700 });

  const paths: DevPkiPaths = {
    dir,
    ca: { cert: join(dir, "ca.pem"), key: join(dir, "ca.key") },
    agentCa: { cert: join(dir, "agent-ca.pem"), key: join(dir, "agent-ca.key") },
    adminCa: { cert: join(dir, "admin-ca.pem"), key: join(dir, "admin-ca.key") },
    server: { cert: join(dir, "server.pem"), key: join(dir, "server.key") },
    agents: {},
    admins: {},
  };

  // A new CA orphans every leaf issued by a previous one, so leaves are reissued with it.
  const { ca, isNew: caIsNew } = await ensureCa(paths.ca, "pwsync dev server CA");
  const agentCa = await ensureCa(paths.agentCa, "pwsync dev agent CA");
  const adminCa = await ensureCa(paths.adminCa, "pwsync dev admin CA");

  if (caIsNew || !(await pairExists(paths.server))) {
    await writePair(paths.server, await issueServerCert(ca, options.serverNames ?? []));
  }

  for (const name of agentNames) {
    const agentPaths = { cert: join(dir, "agents", `${name}.pem`), key: join(dir, "agents", `${name}.key`) };
    if (agentCa.isNew || !(await pairExists(agentPaths))) await writePair(agentPaths, await issueAgentCert(agentCa.ca, name));
    paths.agents[name] = agentPaths;
  }
  for (const name of adminNames) {
    const adminPaths = { cert: join(dir, "admins", `${name}.pem`), key: join(dir, "admins", `${name}.key`) };
    if (adminCa.isNew || !(await pairExists(adminPaths))) await writePair(adminPaths, await issueAdminCert(adminCa.ca, name));
    paths.admins[name] = adminPaths;
  }
  return paths;
}
