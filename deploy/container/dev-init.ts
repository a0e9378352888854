// Dev/demo only (compose `init` service): creates what a real deployment gets from its PKI and
// secret store, once, into the shared volume mounted at PWSYNC_DEV_SECRETS (default
// /run/pwsync). Re-running keeps what exists, so a restart does not orphan sealed secrets.
//
//   pki/         server CA + server certificate (ingest, admin, sandbox-tenant); agent CA + agent
//                certs (URI SAN spiffe://pwsync/agent/<dc>); admin CA + admin certs
//   keys/        X25519 sealing key pair (the executor's keysDir)
//   ingest/accepted-key-ids   JSON list of sealing key ids agents may use
//   db/          Postgres superuser password, the services' database URL, Grafana's read-only password
//   sandbox/     the sandbox tenant's app secret and demo users
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { generateRecipientKeyPair, loadRecipientPublicKey } from "@pwsync/crypto";
import { demoUsers } from "@pwsync/devstack/demo-users";
import { ensureDevPki } from "@pwsync/pki";

const root = process.env.PWSYNC_DEV_SECRETS ?? "/run/pwsync";
const serverNames = (process.env.PWSYNC_DEV_SERVER_NAMES ?? "ingest,admin,sandbox-tenant,localhost").split(",").filter(Boolean);
const agents = (process.env.PWSYNC_DEV_AGENTS ?? "dc01,dc02").split(",").filter(Boolean);
const userCount = Number(process.env.PWSYNC_DEV_USERS ?? 1000);
const say = (msg: string) => process.stdout.write(`${JSON.stringify({ level: 30, service: "dev-init", msg })}\n`);

const dir = (name: string) => {
  const full = path.join(root, name);
  mkdirSync(full, { recursive: true });
  return full;
};
/** Files the services read must be readable by the image's non-root user and no one else matters here: it is a dev volume. */
const writeOnce = (file: string, content: () => string) => {
  if (!existsSync(file)) writeFileSync(file, content(), { mode: 0o640 });
  return readFileSync(file, "utf8").trim();
};
const secret = () => `${randomBytes(24).toString("base64url")}\n`;

const pki = await ensureDevPki(dir("pki"), { serverNames, agents, admins: ["admin"] });
say(`dev PKI in ${pki.dir} (server names: ${serverNames.join(", ")}; agents: ${agents.join(", ")})`);

const keys = dir("keys");
let publics = readdirSync(keys)
  .filter((n) => n.endsWith(".pub.pem"))
  .sort();
if (publics.length === 0) {
  const pair = generateRecipientKeyPair();
  writeFileSync(path.join(keys, `${pair.keyId}.key.pem`), pair.privatePem, { mode: 0o640 });
  writeFileSync(path.join(keys, `${pair.keyId}.pub.pem`), pair.publicPem, { mode: 0o644 });
  publics = [`${pair.keyId}.pub.pem`];
}
const keyIds = publics.map((n) => loadRecipientPublicKey(readFileSync(path.join(keys, n), "utf8")).keyId);
writeFileSync(path.join(dir("ingest"), "accepted-key-ids"), `${JSON.stringify(keyIds)}\n`, { mode: 0o644 });
say(`sealing keys: ${keyIds.join(", ")}`);

const db = dir("db");
const dbPassword = writeOnce(path.join(db, "password"), secret);
writeOnce(path.join(db, "readonly-password"), secret);
// The owner's URL is for migrations only; the services connect as pwsync_service, which the
// migrate job creates with this password and grants rows but no DDL (grantServiceRole).
writeFileSync(path.join(db, "database-url"), `postgres://pwsync:${dbPassword}@postgres:5432/pwsync\n`, { mode: 0o640 });
const servicePassword = writeOnce(path.join(db, "service-password"), secret);
writeFileSync(path.join(db, "service-database-url"), `postgres://pwsync_service:${servicePassword}@postgres:5432/pwsync\n`, { mode: 0o640 });
writeOnce(path.join(dir("grafana"), "admin-password"), secret);

const sandbox = dir("sandbox");
writeOnce(path.join(sandbox, "client-secret"), secret);
writeOnce(path.join(sandbox, "users.json"), () => JSON.stringify(demoUsers(userCount), null, 1));
say("sandbox app secret and demo users ready");

// The Postgres image and Grafana run as their own users; the volume is shared by design in dev.
for (const file of ["db/password", "db/readonly-password"]) chmodSync(path.join(root, file), 0o644);

// One folder per consumer (compose mounts each as that service's /run/pwsync), holding only what
// it needs: the CA keys stay here, the executor's private keys reach the executor alone, and
// Grafana gets its read-only password but not the owner's.
const perServiceRoot = process.env.PWSYNC_DEV_SECRETS_PER_SERVICE;
if (perServiceRoot) {
  const sealingKeys = readdirSync(keys)
    .filter((n) => n.endsWith(".key.pem"))
    .map((n) => `keys/${n}`);
  const forService: Record<string, string[]> = {
    ingest: ["pki/ca.pem", "pki/agent-ca.pem", "pki/server.pem", "pki/server.key", "ingest/accepted-key-ids", "db/service-database-url"],
    resolver: ["pki/ca.pem", "sandbox/client-secret", "db/service-database-url"],
    "reset-executor": ["pki/ca.pem", "sandbox/client-secret", "db/service-database-url", ...sealingKeys],
    notifier: ["db/service-database-url"],
    admin: ["pki/ca.pem", "pki/admin-ca.pem", "pki/server.pem", "pki/server.key", "sandbox/client-secret", "db/service-database-url"],
    migrate: ["db/database-url", "db/service-password"],
    postgres: ["db/password", "db/readonly-password"],
    grafana: ["db/readonly-password", "grafana/admin-password"],
    // The stand-in tenant serves with the dev server certificate (SANDBOX_TLS_CERT/KEY); it needs no
    // CA key (dev profile only).
    "sandbox-tenant": ["pki/server.pem", "pki/server.key", "sandbox/client-secret", "sandbox/users.json"],
  };
  for (const [service, files] of Object.entries(forService)) {
    const target = path.join(perServiceRoot, service);
    if (!existsSync(target)) continue;
    for (const file of files) {
      mkdirSync(path.join(target, path.dirname(file)), { recursive: true });
      // Readable by the consumer's own user (postgres and grafana images run as theirs).
      writeFileSync(path.join(target, file), readFileSync(path.join(root, file)), { mode: 0o644 });
    }
  }
  say(`per-service secrets written under ${perServiceRoot}: ${Object.keys(forService).join(", ")}`);
}
