import { exitWhenParentDies } from "@pwsync/service-runtime";
import { readFile } from "node:fs/promises";
import { createLogger } from "@pwsync/log";
import { ensureDevPki } from "@pwsync/pki";
import { readSandboxConfig } from "./cli-config.js";
import { startSandboxTenant } from "./server.js";

const BANNER = "*** SANDBOX TENANT: a local stand-in for Microsoft Entra ID / Graph. NOT Microsoft. Passwords set here reach no real account. ***";

const log = createLogger({ service: "sandbox-tenant" });
const config = readSandboxConfig(process.argv.slice(2), process.env);

let tlsCertFile = config.tlsCertFile;
let tlsKeyFile = config.tlsKeyFile;
if (!tlsCertFile || !tlsKeyFile) {
  const pki = await ensureDevPki(config.pkiDir!);
  tlsCertFile = pki.server.cert;
  tlsKeyFile = pki.server.key;
}

const sandbox = await startSandboxTenant({
  tls: { cert: await readFile(tlsCertFile, "utf8"), key: await readFile(tlsKeyFile, "utf8") },
  tenantId: config.tenantId,
  apps: [
    {
      clientId: config.clientId,
      clientSecret: config.clientSecret,
      certificates: config.clientCertFile ? [await readFile(config.clientCertFile, "utf8")] : [],
      roles: config.appRoles,
    },
  ],
  usersFile: config.usersFile,
  stateFile: config.stateFile,
  port: config.port,
  host: config.host,
  writeBudget: config.writeBudget,
  // Benchmarks lower the scrypt cost so hashing is not what they measure.
  ...(process.env.SANDBOX_SCRYPT_COST ? { scryptCost: Number(process.env.SANDBOX_SCRYPT_COST) } : {}),
  logger: log,
});

process.stderr.write(`${BANNER}\n`);
log.warn({ event: "sandbox_banner", sandbox: true }, BANNER);
log.info(
  {
    event: "ready",
    url: sandbox.url,
    authorityHost: sandbox.url,
    graphBaseUrl: `${sandbox.url}/v1.0`,
    tenantId: config.tenantId,
    clientId: config.clientId,
    secretAuth: config.clientSecret !== undefined,
    certificateAuth: config.clientCertFile !== undefined,
    writeBudget: config.writeBudget,
  },
  "sandbox tenant listening",
);

// Under the dev launcher, stop (gracefully, via our own SIGTERM handler) when it is gone.
exitWhenParentDies(() => process.kill(process.pid, "SIGTERM"));
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    log.info({ event: "stopping", signal }, "sandbox tenant stopping");
    sandbox.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
