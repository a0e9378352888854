import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { loadRecipientPublicKey } from "@pwsync/crypto";
import * as grpc from "@grpc/grpc-js";
import { createClient, isServiceError, mtlsChannelCredentials } from "@pwsync/grpc";
import { AdminService, ChangeState, type GetChangeResponse } from "@pwsync/proto";
import { parseArgs } from "node:util";
import {
  demoUsers,
  generatedPassword,
  percentile,
  pushChanges,
  startStack,
  stopOnAnyExit,
  waitForOutcomes,
  type Outcome,
  type PlannedChange,
  type SandboxUserSpec,
} from "@pwsync/devstack";
import { openEventLog } from "@pwsync/eventlog";
import { sandboxControl } from "@pwsync/sandbox-tenant";
import { randomUUID } from "node:crypto";

// `npm run demo -- --changes N [--passwords FILE] [--data-dir DIR]`: the whole stack, N changes
// pushed as agents would, a report, and exit 0 only if nothing was lost.
const { values } = parseArgs({
  options: {
    changes: { type: "string" },
    passwords: { type: "string" },
    "data-dir": { type: "string", default: ".state/demo" },
    users: { type: "string" },
    "timeout-seconds": { type: "string", default: "600" },
    remote: { type: "string" },
    ingest: { type: "string", default: "127.0.0.1:7443" },
    admin: { type: "string", default: "127.0.0.1:7444" },
    sandbox: { type: "string", default: "https://127.0.0.1:8443" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  process.stdout.write(`usage: npm run demo -- --changes N [--passwords FILE] [--data-dir DIR] [--users U]

  --changes    number of password changes to push (default: one per line of FILE, or 100)
  --passwords  lines "account<TAB>password"; accounts become sandbox users, changes cycle through the lines
  --data-dir   where the stack keeps its data (kept after exit; default .state/demo)
  --users      sandbox users to spread generated changes over (default: changes / 2, max 5000)

  against a stack that is already running (npm start, or docker compose --profile dev):
  --remote DIR  its secrets folder: pki/ (CA, agents/dc01, admins/admin), keys/*.pub.pem and
                sandbox/users.json — the launcher's data dir (.state), or for compose:
                docker compose cp init:/run/pwsync .state/compose
  --ingest, --admin, --sandbox   where it listens (defaults 127.0.0.1:7443, :7444, https://127.0.0.1:8443);
                outcomes are read through the admin API
`);
  process.exit(0);
}
const say = (message: string) => process.stderr.write(`[demo] ${message}\n`);
const fail = (message: string): never => {
  process.stderr.write(`demo: ${message}\n`);
  process.exit(2);
};

let entries: Array<{ account: string; password: string }> | undefined;
if (values.passwords) {
  if (!existsSync(values.passwords)) fail(`passwords file ${values.passwords} does not exist`);
  entries = readFileSync(values.passwords!, "utf8")
    .split(/\r?\n/)
    .map((line, index) => ({ line, index }))
    .filter(({ line }) => line.trim() !== "" && !line.startsWith("#"))
    .map(({ line, index }) => {
      const tab = line.indexOf("\t");
      if (tab <= 0) fail(`${values.passwords}:${index + 1}: expected "account<TAB>password"`);
      return { account: line.slice(0, tab).trim(), password: line.slice(tab + 1) };
    });
  if (entries.length === 0) fail(`${values.passwords} has no "account<TAB>password" lines`);
}
const changes = Number(values.changes ?? entries?.length ?? 100);
if (!Number.isInteger(changes) || changes < 1) fail("--changes must be a positive integer");

let users: SandboxUserSpec[];
let planned: PlannedChange[];
const remoteDir = values.remote;
const remoteUsers = remoteDir ? (JSON.parse(readFileSync(path.join(remoteDir, "sandbox", "users.json"), "utf8")) as SandboxUserSpec[]) : undefined;
const agents = ["dc01", "dc02"];
const start = Date.now() - changes;
if (entries) {
  const accounts = [...new Set(entries.map((e) => e.account))];
  if (remoteUsers) {
    users = accounts.map(
      (account) => remoteUsers.find((u) => u.userPrincipalName.split("@")[0] === account) ?? fail(`${account} is not a user of the running sandbox tenant`),
    );
  } else {
    users = demoUsers(accounts.length).map((u, i) => ({ ...u, userPrincipalName: `${accounts[i]}@contoso.example`, mail: `${accounts[i]}@contoso.example` }));
  }
  const byAccount = new Map(users.map((u) => [u.userPrincipalName.split("@")[0]!, u]));
  planned = Array.from({ length: changes }, (_, i) => {
    const entry = entries![i % entries!.length]!;
    return { changeId: randomUUID(), user: byAccount.get(entry.account)!, password: entry.password, changedAt: new Date(start + i), agent: agents[i % 2]! };
  });
} else {
  const wanted = Number(values.users ?? Math.min(5000, Math.max(1, Math.ceil(changes / 2))));
  users = remoteUsers ? remoteUsers.slice(0, wanted) : demoUsers(wanted);
  planned = Array.from({ length: changes }, (_, i) => ({
    changeId: randomUUID(),
    user: users[i % users.length]!,
    password: generatedPassword(),
    changedAt: new Date(start + i),
    agent: agents[i % 2]!,
  }));
}

interface Target {
  endpoint: Parameters<typeof pushChanges>[0];
  sandboxUrl: string | undefined;
  caPem: Buffer;
  outcomes(ids: Set<string>, onProgress: (done: number) => void): Promise<Map<string, Outcome>>;
  close(): Promise<void>;
  dataDir: string;
}

async function localTarget(): Promise<Target> {
  say(`starting the stack in ${values["data-dir"]}`);
  // The demo's bursts are far above one DC's normal rate: lift ingest's per-agent limit.
  const stack = await startStack({
    dataDir: values["data-dir"]!,
    ports: "random",
    agents,
    sandbox: { users, scryptCost: 1024 },
    progress: say,
    overlay: { ingest: { agentRateLimit: { perSecond: 1e6, burst: 1e6 } } },
  });
  const log = await openEventLog(stack.databaseUrl, { migrate: false, maxConnections: 2 });
  return {
    endpoint: stack,
    sandboxUrl: stack.sandboxUrl,
    caPem: readFileSync(stack.pki.ca.cert),
    outcomes: (ids, onProgress) => waitForOutcomes(log, ids, { timeoutMs: Number(values["timeout-seconds"]) * 1000, onProgress }),
    close: async () => {
      await log.close();
      await stack.stop();
    },
    dataDir: stack.dataDir,
  };
}

const TERMINAL_STATE: Partial<Record<ChangeState, string>> = {
  [ChangeState.PASSWORD_SET]: "PasswordSet",
  [ChangeState.FAILED]: "ResetFailed",
  [ChangeState.SUPERSEDED]: "Superseded",
};

/** A stack that is already running: agents' view for pushing, the admin API for outcomes. */
async function remoteTarget(dir: string): Promise<Target> {
  const file = (...parts: string[]) => {
    const full = path.join(dir, ...parts);
    if (!existsSync(full)) fail(`${full} is missing: --remote needs the stack's secrets folder`);
    return readFileSync(full);
  };
  const caPem = file("pki", "ca.pem");
  const publicKeys = readdirSync(path.join(dir, "keys"))
    .filter((n) => n.endsWith(".pub.pem"))
    .sort();
  if (publicKeys.length === 0) fail(`no sealing public key (*.pub.pem) in ${path.join(dir, "keys")}`);
  const recipient = loadRecipientPublicKey(file("keys", publicKeys.at(-1)!).toString("utf8"));
  const channel = new grpc.Client(
    values.admin!,
    mtlsChannelCredentials({ ca: caPem, cert: file("pki", "admins", "admin.pem"), key: file("pki", "admins", "admin.key") }),
  );
  const admin = createClient(AdminService, channel);
  const getChange = (changeId: string): Promise<GetChangeResponse | undefined> =>
    admin.getChange({ changeId }).catch((err: unknown) => {
      if (isServiceError(err) && err.code === grpc.status.NOT_FOUND) return undefined;
      throw err;
    });
  say(`using the running stack: ingest ${values.ingest}, admin ${values.admin}, sandbox ${values.sandbox}`);
  return {
    endpoint: {
      recipient,
      agentEndpoint: (agent: string) => ({
        address: values.ingest!,
        caPem,
        certPem: file("pki", "agents", `${agent}.pem`),
        keyPem: file("pki", "agents", `${agent}.key`),
      }),
    },
    sandboxUrl: values.sandbox,
    caPem,
    outcomes: async (ids, onProgress) => {
      const done = new Map<string, Outcome>();
      const deadline = Date.now() + Number(values["timeout-seconds"]) * 1000;
      while (done.size < ids.size && Date.now() < deadline) {
        for (const id of ids) {
          if (done.has(id)) continue;
          const change = await getChange(id);
          const type = change?.summary ? TERMINAL_STATE[change.summary.state] : undefined;
          if (type && change?.summary?.updatedAt) done.set(id, { type, createdAt: timestampDate(change.summary.updatedAt), data: {} });
        }
        onProgress(done.size);
        if (done.size < ids.size) await new Promise((r) => setTimeout(r, 500));
      }
      return done;
    },
    close: async () => channel.close(),
    dataDir: dir,
  };
}

const target = remoteDir ? await remoteTarget(remoteDir) : await localTarget();
stopOnAnyExit(() => target.close(), say);
let exitCode = 1;
try {
  say(`pushing ${changes} changes from ${agents.join(" and ")} (sealed, mTLS)`);
  let lastReport = 0;
  const sent = await pushChanges(target.endpoint, planned, {
    onProgress: (n) => {
      if (Date.now() - lastReport > 1000 || n === changes) {
        lastReport = Date.now();
        say(`sent ${n}/${changes}`);
      }
    },
  });
  say("all changes committed by ingest; waiting until each is terminal");
  let lastDone = -1;
  const outcomes = await target.outcomes(new Set(sent.map((s) => s.changeId)), (done) => {
    if (done !== lastDone && (done === changes || Date.now() - lastReport > 1000)) {
      lastReport = Date.now();
      lastDone = done;
      say(`terminal ${done}/${changes}`);
    }
  });
  const counts = { passwordSet: 0, superseded: 0, failed: 0 };
  const latencies: number[] = [];
  for (const change of sent) {
    const outcome = outcomes.get(change.changeId);
    if (!outcome) continue;
    if (outcome.type === "PasswordSet") counts.passwordSet++;
    else if (outcome.type === "Superseded") counts.superseded++;
    else counts.failed++;
    latencies.push(outcome.createdAt.getTime() - change.sentAt);
  }
  latencies.sort((a, b) => a - b);
  const lost = sent.length - outcomes.size;

  // The sign-in check: for a sample of users, the sandbox must accept the password of that
  // user's newest change when it was set.
  const control = target.sandboxUrl ? sandboxControl(target.sandboxUrl, target.caPem) : undefined;
  const newest = new Map<string, (typeof sent)[number]>();
  for (const change of sent) {
    const current = newest.get(change.user.id);
    if (!current || current.changedAt < change.changedAt) newest.set(change.user.id, change);
  }
  let verified = 0;
  let mismatched = 0;
  if (control) {
    const sample = [...newest.values()].filter((c) => outcomes.get(c.changeId)?.type === "PasswordSet").slice(0, 200);
    for (const change of sample) (await control.signIn(change.user.userPrincipalName, change.password)) ? verified++ : mismatched++;
  }
  const report = {
    changes: sent.length,
    ...counts,
    lost,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    signInVerified: verified,
    signInMismatched: mismatched,
    dataDir: target.dataDir,
  };
  exitCode = lost === 0 && mismatched === 0 ? 0 : 1;
  if (lost > 0) say(`${lost} changes did not reach a terminal state`);
  process.stdout.write(`${JSON.stringify(report)}\n`);
} finally {
  await target.close();
}
process.exit(exitCode);
