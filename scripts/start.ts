import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { startStack, stopOnAnyExit, type Stack } from "@pwsync/devstack";
import { parse as parseYaml } from "yaml";

// `npm start`: the whole server side on this machine, on the embedded default.
const { values } = parseArgs({
  options: {
    "data-dir": { type: "string", default: ".state" },
    config: { type: "string" },
    ports: { type: "string", default: "fixed" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  process.stdout.write(`usage: npm start -- [--data-dir DIR] [--config FILE] [--ports fixed|random]

  --data-dir  where Postgres data, PKI, keys, logs and caught mail live (default .state)
  --config    YAML merged over the generated pwsync.yaml; with graph.clientSecret or
              graph.certificatePath set, the real Microsoft Graph is used and no sandbox starts
  --ports     fixed (default: ingest 7443, sandbox 8443, smtp 2525, postgres 54329) or random
`);
  process.exit(0);
}

let overlay: Record<string, unknown> | undefined;
if (values.config) {
  if (!existsSync(values.config)) {
    process.stderr.write(`pwsync: configuration file ${values.config} does not exist\n`);
    process.exit(2);
  }
  overlay = parseYaml(readFileSync(values.config, "utf8")) ?? {};
}

const log = (message: string) => process.stdout.write(`[pwsync] ${message}\n`);
let stack: Stack;
try {
  stack = await startStack({ dataDir: values["data-dir"]!, ports: values.ports === "random" ? "random" : "fixed", overlay, progress: log });
} catch (err) {
  process.stderr.write(`pwsync: could not start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}

// Paths as short as a user would type them: relative inside this folder, absolute elsewhere.
const rel = (p: string) => {
  const relative = path.relative(process.cwd(), p) || ".";
  return relative.startsWith("..") ? p : relative;
};
log("ready.");
process.stdout.write(
  [
    "",
    `  agent ingest (mTLS gRPC)  ${stack.ingestAddress}`,
    `  admin API (mTLS gRPC, reflection)  ${stack.adminAddress}  — try: npm run pwsync -- status --addr ${stack.adminAddress} --ca ${rel(stack.pki.ca.cert)} --cert ${rel(path.join(stack.pki.dir, "admins/admin.pem"))} --key ${rel(path.join(stack.pki.dir, "admins/admin.key"))}`,
    stack.sandboxUrl
      ? `  SANDBOX tenant (not Microsoft!)  ${stack.sandboxUrl}  — sign-in check: POST ${stack.sandboxUrl}/sandbox/signin`
      : "  Microsoft Graph: real tenant from your --config",
    `  SMTP catcher              127.0.0.1:${stack.smtpPort}  → mail in ${rel(stack.mailDir)}/`,
    `  PostgreSQL event log      ${stack.databaseUrl.replace(/:[^:@/]+@/, ":***@")}`,
    `  configuration             ${rel(stack.configFile)}`,
    `  dev PKI (CA, server, agent certs)  ${rel(stack.pki.dir)}/`,
    `  logs (JSON lines)         ${rel(stack.logsDir)}/`,
    "",
    `  Push test changes into it: npm run demo -- --changes 100 --remote ${rel(stack.dataDir)}${
      values.ports === "random"
        ? ` --ingest ${stack.ingestAddress} --admin ${stack.adminAddress}${stack.sandboxUrl ? ` --sandbox ${stack.sandboxUrl}` : ""}`
        : ""
    }`,
    "  Ctrl-C stops everything; data stays in the data dir.",
    "",
  ].join("\n"),
);

// A service that dies is restarted (its work is safe in the event log); any end of this
// process stops everything it started.
stack.supervise(log);
stopOnAnyExit(() => stack.stop(), log);
