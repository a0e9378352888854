import { mkdir, readFile, writeFile, access } from "node:fs/promises";
import { join } from "node:path";
import { createCa, issueAdminCert, issueClientCert, issueServerCert, type CertAndKey } from "./certs.js";

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
  ca: CertPaths;
  server: CertPaths;
  agents: Record<string, CertPaths>;
  admins: Record<string, CertPaths>;
}

const AGENT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

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

/**
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
    server: { cert: join(dir, "server.pem"), key: join(dir, "server.key") },
    agents: {},
    admins: {},
  };

  let ca: CertAndKey;
  // A new CA orphans every leaf issued by a previous one, so leaves are reissued with it.
  let caIsNew = false;
  if (await pairExists(paths.ca)) {
    ca = { cert: await readFile(paths.ca.cert, "utf8"), key: await readFile(paths.ca.key, "utf8") };
  } else {
    ca = await createCa("pwsync dev CA");
    await writePair(paths.ca, ca);
    caIsNew = true;
  }

  if (caIsNew || !(await pairExists(paths.server))) {
    await writePair(paths.server, await issueServerCert(ca, options.serverNames ?? []));
  }

  for (const name of agentNames) {
    const agentPaths = { cert: join(dir, "agents", `${name}.pem`), key: join(dir, "agents", `${name}.key`) };
    if (caIsNew || !(await pairExists(agentPaths))) await writePair(agentPaths, await issueClientCert(ca, name));
    paths.agents[name] = agentPaths;
  }
  for (const name of adminNames) {
    const adminPaths = { cert: join(dir, "admins", `${name}.pem`), key: join(dir, "admins", `${name}.key`) };
    if (caIsNew || !(await pairExists(adminPaths))) await writePair(adminPaths, await issueAdminCert(ca, name));
    paths.admins[name] = adminPaths;
  }
  return paths;
}
