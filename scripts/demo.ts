import { existsSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { demoUsers, generatedPassword, percentile, pushChanges, startStack, waitForOutcomes, type PlannedChange, type SandboxUserSpec } from "@pwsync/devstack";
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
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  process.stdout.write(`usage: npm run demo -- --changes N [--passwords FILE] [--data-dir DIR] [--users U]

  --changes    number of password changes to push (default: one per line of FILE, or 100)
  --passwords  lines "account<TAB>password"; accounts become sandbox users, changes cycle through the lines
  --data-dir   where the stack keeps its data (kept after exit; default .state/demo)
  --users      sandbox users to spread generated changes over (default: changes / 2, max 5000)
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
const agents = ["dc01", "dc02"];
const start = Date.now() - changes;
if (entries) {
  const accounts = [...new Set(entries.map((e) => e.account))];
  users = demoUsers(accounts.length).map((u, i) => ({ ...u, userPrincipalName: `${accounts[i]}@contoso.example`, mail: `${accounts[i]}@contoso.example` }));
  const byAccount = new Map(users.map((u) => [u.userPrincipalName.split("@")[0]!, u]));
  planned = Array.from({ length: changes }, (_, i) => {
    const entry = entries![i % entries!.length]!;
    return { changeId: randomUUID(), user: byAccount.get(entry.account)!, password: entry.password, changedAt: new Date(start + i), agent: agents[i % 2]! };
  });
} else {
  users = demoUsers(Number(values.users ?? Math.min(5000, Math.max(1, Math.ceil(changes / 2)))));
  planned = Array.from({ length: changes }, (_, i) => ({ changeId: randomUUID(), user: users[i % users.length]!, password: generatedPassword(), changedAt: new Date(start + i), agent: agents[i % 2]! }));
}

say(`starting the stack in ${values["data-dir"]}`);
const stack = await startStack({ dataDir: values["data-dir"]!, ports: "random", agents, sandbox: { users, scryptCost: 1024 }, progress: say });
const log = await openEventLog(stack.databaseUrl, { migrate: false, maxConnections: 2 });
let exitCode = 1;
try {
  say(`pushing ${changes} changes from ${agents.join(" and ")} (sealed, mTLS)`);
  let lastReport = 0;
  const sent = await pushChanges(stack, planned, {
    onProgress: (n) => {
      if (Date.now() - lastReport > 1000 || n === changes) {
        lastReport = Date.now();
        say(`sent ${n}/${changes}`);
      }
    },
  });
  say("all changes committed by ingest; waiting until each is terminal");
  let lastDone = -1;
  const outcomes = await waitForOutcomes(log, new Set(sent.map((s) => s.changeId)), {
    timeoutMs: Number(values["timeout-seconds"]) * 1000,
    onProgress: (done) => {
      if (done !== lastDone && (done === changes || Date.now() - lastReport > 1000)) {
        lastReport = Date.now();
        lastDone = done;
        say(`terminal ${done}/${changes}`);
      }
    },
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
  const control = stack.sandboxUrl ? sandboxControl(stack.sandboxUrl, readFileSync(stack.pki.ca.cert)) : undefined;
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
    dataDir: stack.dataDir,
  };
  exitCode = lost === 0 && mismatched === 0 ? 0 : 1;
  if (lost > 0) say(`${lost} changes did not reach a terminal state`);
  process.stdout.write(`${JSON.stringify(report)}\n`);
} finally {
  await log.close();
  await stack.stop();
}
process.exit(exitCode);
