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
let publics = readdirSync(keys).filter((n) => n.endsWith(".pub.pem")).sort();
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
writeFileSync(path.join(db, "database-url"), `postgres://pwsync:${dbPassword}@postgres:5432/pwsync\n`, { mode: 0o640 });

const sandbox = dir("sandbox");
writeOnce(path.join(sandbox, "client-secret"), secret);
writeOnce(path.join(sandbox, "users.json"), () => JSON.stringify(demoUsers(userCount), null, 1));
say("sandbox app secret and demo users ready");

// The Postgres image and Grafana run as their own users; the volume is shared by design in dev.
for (const file of ["db/password", "db/readonly-password"]) chmodSync(path.join(root, file), 0o644);
