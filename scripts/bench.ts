import { cpus, loadavg, tmpdir } from "node:os";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import {
  demoUsers,
  generatedPassword,
  largestPerService,
  percentile,
  pushChanges,
  residentMb,
  startStack,
  stopOnAnyExit,
  waitForOutcomes,
  type PlannedChange,
  type Stack,
} from "@pwsync/devstack";
import { changeStreamId, openEventLog, readStreamsEventsByType } from "@pwsync/eventlog";
import { sandboxControl } from "@pwsync/sandbox-tenant";
import { randomUUID } from "node:crypto";
import { historyBench } from "./bench/history.js";
import { benchAgentDrain } from "./bench/agent-drain.js";

// `npm run bench -- [--json]`: two runs of the whole stack (every service its own process).
// 1. Throughput at a steady offered load against a zero-latency sandbox, with the per-change
//    pipeline overhead: ingest receipt → Graph request sent (PasswordSet total − work − wait).
// 2. Rate-limited: Graph's documented identity-write budget scaled down 10× in time (3,000 per
//    150 s → 300 per 15 s) so it runs in a minute; reports the share of the budget used and of
//    calls throttled.
// Each run ends by reading every server process's resident memory (VmRSS) before the stack stops.
const { values } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    rate: { type: "string", default: "1000" },
    seconds: { type: "string", default: "4" },
    "steady-rate": { type: "string", default: "100" },
    "steady-seconds": { type: "string", default: "10" },
    "limited-changes": { type: "string", default: "600" },
    "skip-limited": { type: "boolean", default: false },
    "skip-steady": { type: "boolean", default: false },
    replicas: { type: "string", default: "1" },
    quick: { type: "boolean", default: false },
    "history-events": { type: "string", default: "10000000" },
    "history-explain": { type: "string" },
    only: { type: "string" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  process.stdout.write(`usage: npm run bench -- [--json] [--quick] [options]

  --json             the result as one JSON line (last line of output)
  --quick            a smoke run in about a minute: 100 changes at 100/s, a 2 s steady run, no
                     rate-limited run (proves the bench works; its figures mean little)
  --rate N --seconds S            saturation run: N changes/s offered for S s (default 1000 × 4)
  --steady-rate N --steady-seconds S   overhead run at a steady load (default 100/s × 10 s)
  --limited-changes N             rate-limited run size (default 600)
  --skip-steady --skip-limited    leave those runs out
  --replicas N                    replicas per consumer service (default 1)
  --history-events N   history run (scripts/bench/history.ts): a fresh event log filled with N
                       events of a year of 50,000 users (default 10,000,000, --quick 100,000),
                       then the p99 of GetStatus, ListChanges, GetChange, a watchdog tick, every
                       Grafana SQL panel and a consumer's batch read (key "history")
  --history-explain F  also write the EXPLAIN (ANALYZE) plan of every statement they ran to F
  --only history       run only the history part
Every run but --only history also times the dc-agent's single executable draining 100,000
queued changes (--quick 5,000) to a local ingest: rate and peak RSS (key "agent").
Exit code 0 only if no change was lost.
`);
  process.exit(0);
}
if (values.quick)
  Object.assign(values, { rate: "100", seconds: "1", "steady-rate": "100", "steady-seconds": "2", "skip-limited": true, "history-events": "100000" });
const say = (message: string) => process.stderr.write(`[bench] ${message}\n`);
const history = () =>
  historyBench({ events: Number(values["history-events"]), ...(values["history-explain"] ? { explainTo: values["history-explain"] } : {}), say });
if (values.only !== undefined) {
  if (values.only !== "history") throw new Error(`--only ${values.only}: only "history" can run alone`);
  const alone = { history: await history() };
  process.stdout.write(values.json ? `${JSON.stringify(alone)}\n` : `${JSON.stringify(alone, null, 2)}\n`);
  process.exit(0);
}
let running: Stack | undefined;
stopOnAnyExit(async () => running?.stop(), say);
const users = demoUsers(5000);
const replicas = Number(values.replicas);

const SERVER_SERVICES = ["ingest", "resolver", "reset-executor", "notifier", "admin"] as const;
type ServerRss = Partial<Record<(typeof SERVER_SERVICES)[number], number>>;

/** VmRSS of every server process (not the dev stand-ins), the largest replica per service. */
function serverRssMb(stack: Stack): ServerRss {
  const byInstance = Object.fromEntries([...stack.services].map(([instance, service]) => [instance, residentMb(service.child.pid)]));
  const all = largestPerService(byInstance);
  return Object.fromEntries(SERVER_SERVICES.filter((s) => all[s] !== undefined).map((s) => [s, all[s]]));
}

const loadAverage1m = () => Number(loadavg()[0]!.toFixed(2));

async function run(name: string, options: { budget: string; executorLimit: Record<string, unknown>; changes: number; rate: number }) {
  const dataDir = mkdtempSync(path.join(tmpdir(), `pwsync-bench-${name}-`));
  say(`${name}: starting the stack in ${dataDir}`);
  const stack = await startStack({
    dataDir,
    ports: "random",
    sandbox: { users, writeBudget: options.budget, scryptCost: 2, persistState: false },
    // Ingest's per-agent rate limit would cap what is being measured; lifted here.
    overlay: {
      ingest: { agentRateLimit: { perSecond: 1e6, burst: 1e6 } },
      executor: { rateLimit: options.executorLimit, retryLimit: 20 },
      notifier: { notifyAdmins: false, notifyEndUser: false },
    },
    replicas: { resolver: replicas, "reset-executor": replicas, notifier: replicas },
  });
  running = stack;
  const log = await openEventLog(stack.databaseUrl, { migrate: false, maxConnections: 4 });
  const control = sandboxControl(stack.sandboxUrl!, readFileSync(stack.pki.ca.cert));
  try {
    // Warm-up: first calls pay for JIT, TLS sessions and the Graph token.
    const warm = Array.from({ length: 50 }, (_, i) => ({
      changeId: randomUUID(),
      user: users[4999 - i]!,
      password: generatedPassword(),
      changedAt: new Date(),
      agent: "dc01",
    }));
    await waitForOutcomes(log, new Set((await pushChanges(stack, warm)).map((c) => c.changeId)), { timeoutMs: 60_000 });
    // Start the measured run with an empty write window (warm-up writes would count otherwise).
    await control.faults({ reset: true });
    const before = await control.stats();
    const start = Date.now() - options.changes;
    const planned: PlannedChange[] = Array.from({ length: options.changes }, (_, i) => ({
      changeId: randomUUID(),
      user: users[i % 4900]!,
      password: generatedPassword(),
      changedAt: new Date(start + i),
      agent: i % 2 ? "dc01" : "dc02",
    }));
    say(`${name}: offering ${options.changes} changes at ${options.rate}/s`);
    const t0 = Date.now();
    let lastSay = 0;
    const sent = await pushChanges(stack, planned, {
      ratePerSecond: options.rate,
      streamsPerAgent: 4,
      sealFirst: true,
      onProgress: (n) => {
        if (Date.now() - lastSay > 2000) {
          lastSay = Date.now();
          say(`${name}: sent ${n}/${options.changes}`);
        }
      },
    });
    const outcomes = await waitForOutcomes(log, new Set(sent.map((c) => c.changeId)), {
      timeoutMs: 600_000,
      onProgress: (done) => {
        if (Date.now() - lastSay > 2000) {
          lastSay = Date.now();
          say(`${name}: terminal ${done}/${options.changes}`);
        }
      },
    });
    const lastTerminal = Math.max(...[...outcomes.values()].map((o) => o.createdAt.getTime()));
    const after = await control.stats();
    const overheads: number[] = [];
    const graphMs: number[] = [];
    const setTimes: number[] = [];
    for (const outcome of outcomes.values()) {
      if (outcome.type !== "PasswordSet") continue;
      const timing = outcome.data.timing as { totalMs?: number; workMs?: number; waitMs?: number } | undefined;
      overheads.push((timing?.totalMs ?? 0) - (timing?.workMs ?? 0) - (timing?.waitMs ?? 0));
      graphMs.push(timing?.workMs ?? 0);
      setTimes.push(outcome.createdAt.getTime());
    }
    overheads.sort((a, b) => a - b);
    setTimes.sort((a, b) => a - b);
    // Where the time goes, from a sample: ingest receipt → UserResolved → PasswordSet (insert times).
    const sample = sent.slice(0, 500).map((c) => changeStreamId(c.changeId));
    const stageEvents = await readStreamsEventsByType(log.db, sample, ["ChangeCaptured", "UserResolved", "PasswordSet"]);
    const byStream = new Map<string, Record<string, number>>();
    for (const e of stageEvents) {
      const entry = byStream.get(e.streamId) ?? {};
      entry[e.type] = e.type === "ChangeCaptured" ? Date.parse(String((e.data as { receivedAt: string }).receivedAt)) : e.createdAt.getTime();
      byStream.set(e.streamId, entry);
    }
    const resolveMs: number[] = [];
    const executeMs: number[] = [];
    for (const t of byStream.values()) {
      if (t.ChangeCaptured && t.UserResolved) resolveMs.push(t.UserResolved - t.ChangeCaptured);
      if (t.UserResolved && t.PasswordSet) executeMs.push(t.PasswordSet - t.UserResolved);
    }
    resolveMs.sort((a, b) => a - b);
    executeMs.sort((a, b) => a - b);
    graphMs.sort((a, b) => a - b);
    say(`${name}: Graph PATCH (sandbox) p50/p99 ${percentile(graphMs, 50)}/${percentile(graphMs, 99)} ms`);
    say(
      `${name}: stages p50/p99 — receipt→UserResolved ${percentile(resolveMs, 50)}/${percentile(resolveMs, 99)} ms, UserResolved→PasswordSet ${percentile(executeMs, 50)}/${percentile(executeMs, 99)} ms`,
    );
    const rssMb = serverRssMb(stack);
    say(`${name}: resident memory (MB) at the end: ${JSON.stringify(rssMb)}`);
    return {
      stack,
      dataDir,
      sent,
      outcomes,
      seconds: (lastTerminal - t0) / 1000,
      overheads,
      setTimes,
      before,
      after,
      lost: sent.length - outcomes.size,
      rssMb,
      loadAverage1m: loadAverage1m(),
    };
  } finally {
    await log.close();
    await stack.stop();
    running = undefined;
  }
}

const rate = Number(values.rate);
const changes = Math.round(rate * Number(values.seconds));
const unlimited = { budget: "100000000/150", executorLimit: { enabled: false } };
// Throughput: offer more than the stack can take and measure what it completes per second.
const saturated = await run("throughput", { ...unlimited, changes, rate });
rmSync(saturated.dataDir, { recursive: true, force: true });
// Overhead: a steady load well under capacity, so the figure is the pipeline's own latency
// (ingest receipt → Graph request sent), not time spent queueing behind a backlog.
const steadyRate = Number(values["steady-rate"]);
const steady = values["skip-steady"]
  ? undefined
  : await run("steady", { ...unlimited, changes: Math.round(steadyRate * Number(values["steady-seconds"])), rate: steadyRate });
if (steady) rmSync(steady.dataDir, { recursive: true, force: true });

const rateLimitBudget = 300;
const limited = values["skip-limited"]
  ? undefined
  : await run("rate-limited", {
      budget: `${rateLimitBudget}/15`,
      executorLimit: { enabled: true, writesPerWindow: Math.floor(rateLimitBudget * 0.95), windowSeconds: 15 },
      changes: Number(values["limited-changes"]),
      rate: 60,
    });
if (limited) rmSync(limited.dataDir, { recursive: true, force: true });

const runs = [saturated, steady, limited].filter((r) => r !== undefined);
/** Each service's largest figure over the runs: the budget holds at the end of every one. */
const rssMb: ServerRss = {};
for (const service of SERVER_SERVICES) {
  const figures = runs.map((r) => r.rssMb[service]).filter((mb) => mb !== undefined);
  if (figures.length) rssMb[service] = Math.max(...figures);
}

function rateLimitedFigures(limited: Awaited<ReturnType<typeof run>>) {
  // Measured by the sandbox at request arrival (commit times of PasswordSet bunch up).
  const peak = limited.after.peakWritesInWindow;
  const writes = limited.after.counters.writes! - limited.before.counters.writes!;
  const throttled = limited.after.counters.throttled! - limited.before.counters.throttled!;
  return {
    budget: `${rateLimitBudget} writes / 15 s (Graph's 3,000 / 150 s, scaled)`,
    changes: limited.sent.length,
    lost: limited.lost,
    peakWritesInAnyWindow: peak,
    budgetShareUsed: Number((peak / rateLimitBudget).toFixed(3)),
    graphWrites: writes,
    // More than 1 means a password was written again (a retry after no answer, a takeover).
    graphWritesPerPasswordSet: Number((writes / Math.max(1, [...limited.outcomes.values()].filter((o) => o.type === "PasswordSet").length)).toFixed(3)),
    throttledShare: writes > 0 ? Number((throttled / writes).toFixed(4)) : 0,
    sustainedPerSec: Number((limited.outcomes.size / limited.seconds).toFixed(1)),
  };
}
const historyFigures = await history();
// The dc-agent (its single executable) draining a backlog to a local ingest: scripts/bench/agent-drain.ts.
const agentFigures = await benchAgentDrain({ backlog: values.quick ? 5_000 : 100_000, say });

// The one place the result is assembled (its field names are what runs are compared by): a
// bench part with its own module (scripts/bench/<part>.ts) adds its key here.
const result: Record<string, unknown> = {
  machine: { cpus: cpus().length, model: cpus()[0]?.model, loadAverage1m: loadAverage1m() },
  replicasPerConsumer: replicas,
  offeredPerSec: rate,
  changes,
  lost: runs.reduce((sum, r) => sum + r.lost, 0),
  throughputPerSec: Math.round(saturated.outcomes.size / saturated.seconds),
  steadyOfferedPerSec: steadyRate,
  // Overhead is latency, and latency on a shared machine depends on what else runs: the load
  // average at the end of the steady run goes with it.
  ...(steady
    ? { overheadP50Ms: percentile(steady.overheads, 50), overheadP99Ms: percentile(steady.overheads, 99), overheadLoadAverage1m: steady.loadAverage1m }
    : {}),
  saturatedOverheadP50Ms: percentile(saturated.overheads, 50),
  rssMb,
  ...(limited ? { rateLimited: rateLimitedFigures(limited) } : {}),
  history: historyFigures,
  agent: agentFigures,
};
process.stdout.write(values.json ? `${JSON.stringify(result)}\n` : `${JSON.stringify(result, null, 2)}\n`);
process.exit(result.lost === 0 ? 0 : 1);
