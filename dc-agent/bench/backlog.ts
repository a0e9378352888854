// Backlog drain benchmark (not a test): fills the durable queue with N sealed changes while
// ingest is down, then starts ingest and lets the agent's sender drain it, printing RSS and
// rate as it goes. Needs nothing but Node (embedded Postgres, dev PKI, real ingest).
//
//   node --import tsx dc-agent/bench/backlog.ts [N=100000]
import { randomUUID } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { toBinary } from "@bufbuild/protobuf";
import { buildPasswordChange } from "@pwsync/agent-link";
import { generateRecipientKeyPair, loadRecipientPublicKey } from "@pwsync/crypto";
import { openEventLog } from "@pwsync/eventlog";
import { startIngest } from "@pwsync/ingest";
import { freePort, startLocalPostgres } from "@pwsync/local-postgres";
import { createLogger } from "@pwsync/log";
import { ensureDevPki } from "@pwsync/pki";
import { PasswordChangeSchema } from "@pwsync/proto";
import { agentConfigSchema } from "../src/config.js";
import { endpointsOf } from "../src/agent.js";
import { DurableQueue } from "../src/queue/durableQueue.js";
import { Sender } from "../src/sender/sender.js";

const total = Number(process.argv[2] ?? 100_000);
const root = mkdtempSync(path.join(tmpdir(), "dc-agent-bench-"));
const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;
const quiet = createLogger({ service: "bench", level: "warn", destination: new Writable({ write: (_c, _e, cb) => cb() }) });
let peakRss = 0;
const sample = () => (peakRss = Math.max(peakRss, process.memoryUsage().rss));
const sampler = setInterval(sample, 100);

const pg = await startLocalPostgres({ dataDir: path.join(root, "pg") });
const log = await openEventLog(`postgres://postgres:pwsync-local@127.0.0.1:${pg.port}/postgres`);
const pki = await ensureDevPki(path.join(root, "pki"), { agents: ["bench"] });
const keys = generateRecipientKeyPair();
const recipient = loadRecipientPublicKey(keys.publicPem);
const port = await freePort();

console.log(`filling the queue with ${total} sealed changes (ingest down)…`);
const queue = await DurableQueue.open(path.join(root, "queue"), { segmentBytes: 8 * 1024 * 1024, logger: quiet });
let t0 = Date.now();
const password = Buffer.from("bench-not-a-real-password");
for (let i = 0; i < total; i += 500) {
  const batch = [];
  for (let j = i; j < Math.min(total, i + 500); j++) {
    const change = buildPasswordChange(
      recipient,
      { changeId: randomUUID(), accountName: `user${j % 5000}`, mail: `user${j % 5000}@bench.example`, changedAt: new Date(), domainController: "bench" },
      password,
    );
    batch.push(queue.append(toBinary(PasswordChangeSchema, change)));
  }
  await Promise.all(batch);
}
const queueBytes = readdirSync(path.join(root, "queue")).reduce((n, f) => n + statSync(path.join(root, "queue", f)).size, 0);
console.log(`queued ${total} in ${((Date.now() - t0) / 1000).toFixed(1)} s, ${mb(queueBytes)} on disk, RSS ${mb(process.memoryUsage().rss)}`);
await queue.close();

// A fresh open, as after an agent restart with a backlog.
global.gc?.();
const reopened = await DurableQueue.open(path.join(root, "queue"), { segmentBytes: 8 * 1024 * 1024, logger: quiet });
console.log(`reopened: depth ${reopened.depth}, RSS ${mb(process.memoryUsage().rss)}`);

const server = await startIngest(
  {
    database: { url: log.connectionString },
    ingest: {
      host: "127.0.0.1",
      port,
      tls: { caFile: pki.agentCa.cert, certFile: pki.server.cert, keyFile: pki.server.key },
      maxMessageBytes: 64 * 1024,
      acceptedKeyIds: [keys.keyId],
      maxBatch: 256,
      agentScopes: { bench: ["contoso.example"] },
      agentRateLimit: { perSecond: 1e6, burst: 1e6 },
    },
  },
  log,
  quiet,
);
const config = agentConfigSchema.parse({
  agent: { domainController: "bench", dataDir: root },
  ingest: {
    primary: { address: `127.0.0.1:${port}`, serverName: "localhost" },
    tls: { caFile: pki.ca.cert, certFile: pki.agents.bench!.cert, keyFile: pki.agents.bench!.key },
    sealingPublicKeyFile: "unused",
    timeoutMs: 60_000,
  },
  ldap: { baseDn: "DC=x", bindDn: "CN=x", bindPasswordFile: "unused" },
});
const sender = new Sender({ queue: reopened, endpoints: endpointsOf(config.ingest), config: config.ingest, dataDir: root, logger: quiet });
t0 = Date.now();
peakRss = 0;
sender.start();
let last = total;
let lastAt = Date.now();
while (reopened.depth > 0) {
  await new Promise((r) => setTimeout(r, 2000));
  const now = Date.now();
  const rate = ((last - reopened.depth) / ((now - lastAt) / 1000)).toFixed(0);
  console.log(
    `  depth ${reopened.depth}, ${rate} changes/s, RSS ${mb(process.memoryUsage().rss)}, heap ${mb(process.memoryUsage().heapUsed)}, segments ${reopened.segmentCount}`,
  );
  last = reopened.depth;
  lastAt = now;
}
const seconds = (Date.now() - t0) / 1000;
sample();
console.log(`drained ${total} in ${seconds.toFixed(1)} s (${(total / seconds).toFixed(0)} changes/s), peak RSS while draining ${mb(peakRss)}`);
clearInterval(sampler);
await sender.stop();
await reopened.close();
await server.shutdown(100);
await log.close();
await pg.stop();
rmSync(root, { recursive: true, force: true });
