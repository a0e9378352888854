import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import type * as grpc from "@grpc/grpc-js";
import { loadRecipientPublicKey } from "@pwsync/crypto";
import { endpointsOf, spoolDirOf } from "../agent.js";
import type { AgentConfig } from "../config.js";
import { Directory } from "../ldap/directory.js";
import { sambaChecks } from "../samba/verifySamba.js";
import { sendHeartbeat } from "../sender/heartbeat.js";
import { readSpoolFacts } from "../spool/spoolFacts.js";
import { AGENT_VERSION } from "../version.js";

export interface CheckResult {
  check: string;
  ok: boolean;
  detail: string;
}

async function attempt(check: string, run: () => Promise<string>): Promise<CheckResult> {
  try {
    return { check, ok: true, detail: await run() };
  } catch (err) {
    const e = err as grpc.ServiceError;
    return { check, ok: false, detail: e.details ?? e.message };
  }
}

function explainGrpc(err: grpc.ServiceError): Error {
  const details = err.details ?? err.message;
  if (/certificate|SSL|TLS|handshake/i.test(details))
    return new Error(`TLS failed (server chain vs ingest.tls.caFile, or ingest refused our certificate): ${details}`);
  if (err.code === 16) return new Error(`ingest refused this agent's client certificate: ${details}`);
  if (err.code === 14) return new Error(`unreachable: ${details}`);
  return new Error(details);
}

/**
 * The seed's Verify button, extended: every ingest server (TLS chain, client certificate
 * accepted, round trip), the sealing key, the LDAP bind, the data folder, and — given an
 * account — what the filter makes of it.
 */
export async function runVerify(config: AgentConfig, options: { account?: string } = {}): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  results.push(
    await attempt("sealing public key", async () => `X25519 key id ${loadRecipientPublicKey(readFileSync(config.ingest.sealingPublicKeyFile, "utf8")).keyId}`),
  );
  let endpoints: ReturnType<typeof endpointsOf> = [];
  results.push(
    await attempt("client certificate files", async () => {
      endpoints = endpointsOf(config.ingest);
      return `${config.ingest.tls.certFile} (CA ${config.ingest.tls.caFile})`;
    }),
  );
  for (const endpoint of endpoints) {
    results.push(
      await attempt(`ingest ${endpoint.role} ${endpoint.address}`, async () => {
        const started = Date.now();
        try {
          const res = await sendHeartbeat(
            endpoint,
            { agentVersion: AGENT_VERSION, filterLoaded: false, queueDepth: 0, oldestQueuedAgeSeconds: 0, domainController: config.agent.domainController },
            config.ingest.timeoutMs,
          );
          const serverTime = res.serverTime ? new Date(Number(res.serverTime.seconds) * 1000).toISOString() : "?";
          return `TLS ok, certificate accepted, round trip ${Date.now() - started} ms (server time ${serverTime})`;
        } catch (err) {
          throw explainGrpc(err as grpc.ServiceError);
        }
      }),
    );
  }
  results.push(
    await attempt("data folder writable", async () => {
      mkdirSync(config.agent.dataDir, { recursive: true, mode: 0o700 });
      const probe = path.join(config.agent.dataDir, `.verify-${randomBytes(4).toString("hex")}`);
      writeFileSync(probe, "");
      rmSync(probe);
      return config.agent.dataDir;
    }),
  );
  results.push(
    await attempt(`spool folder ${spoolDirOf(config)}`, async () => {
      // The filter's spool (issue 11, finding 1: changes left there were invisible).
      const facts = readSpoolFacts(spoolDirOf(config));
      const summary = `${facts.depth} file(s) waiting, oldest ${Math.floor(facts.oldestAgeMs / 1000)} s`;
      if (facts.depth > 0 && facts.oldestAgeMs >= config.alarms.spoolAgeMs)
        throw new Error(
          `${summary}: older than alarms.spoolAgeMs (${Math.floor(config.alarms.spoolAgeMs / 1000)} s) — the agent is not draining the filter's spool`,
        );
      return summary;
    }),
  );
  let directory: Directory | undefined;
  results.push(
    await attempt(`LDAP bind ${config.ldap.url}`, async () => {
      directory = new Directory(config.ldap);
      await directory.check();
      return `bound as ${config.ldap.bindDn}`;
    }),
  );
  if (options.account !== undefined) {
    results.push(
      await attempt(`filter for ${JSON.stringify(options.account)}`, async () => {
        if (!directory) throw new Error("LDAP not available");
        const r = await directory.lookup(options.account!);
        if (r.kind === "notMatched") throw new Error(`not synchronised: ${r.reason}`);
        const a = r.account;
        return `synchronised: ${a.dn} mail=${a.mail ?? "-"} upn=${a.userPrincipalName ?? "-"}${a.disabled ? " (disabled in AD)" : ""}`;
      }),
    );
  }
  await directory?.close();
  if (config.samba?.enabled) results.push(...(await sambaChecks(config)));
  return results;
}

export function formatTable(results: CheckResult[]): string {
  const width = Math.max(5, ...results.map((r) => r.check.length));
  const lines = [`${"CHECK".padEnd(width)}  RESULT  DETAIL`];
  for (const r of results) lines.push(`${r.check.padEnd(width)}  ${r.ok ? "PASS  " : "FAIL  "}  ${r.detail}`);
  const failed = results.filter((r) => !r.ok).length;
  lines.push(failed === 0 ? "all checks passed" : `${failed} check(s) failed`);
  return `${lines.join("\n")}\n`;
}
