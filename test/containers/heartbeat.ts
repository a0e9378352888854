// scripts/test-containers.sh: one heartbeat per dev agent to the compose stack's ingest, sent
// by the dc-agent's own heartbeat code with the agents' dev certificates, as an idle agent on a
// domain controller would (so the dashboard's agent queue-depth panel has agents to show).
//
//   node --import tsx test/containers/heartbeat.ts <secrets dir> <ingest host:port> <agent>...
import { readFileSync } from "node:fs";
import path from "node:path";
import { sendHeartbeat } from "../../dc-agent/src/sender/heartbeat.js";

const [dir, address, ...agents] = process.argv.slice(2);
if (!dir || !address || agents.length === 0) {
  process.stderr.write("usage: heartbeat.ts <secrets dir> <ingest host:port> <agent>...\n");
  process.exit(2);
}
const read = (...parts: string[]) => readFileSync(path.join(dir, ...parts));
for (const agent of agents) {
  const endpoint = {
    role: "primary" as const,
    address,
    caPem: read("pki", "ca.pem"),
    certPem: read("pki", "agents", `${agent}.pem`),
    keyPem: read("pki", "agents", `${agent}.key`),
  };
  const response = await sendHeartbeat(
    endpoint,
    { agentVersion: "container-test", filterLoaded: true, queueDepth: 0, oldestQueuedAgeSeconds: 0, domainController: `${agent}.contoso.example` },
    10_000,
  );
  process.stdout.write(`heartbeat from ${agent} accepted (server time ${response.serverTime ? "set" : "missing"})\n`);
}
