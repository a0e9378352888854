import { appendFileSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { hostname, userInfo } from "node:os";
import type { ConnectionOptions } from "node:tls";
import { Client } from "ldapts";
import type { AgentConfig } from "../config.js";
import { sambaPaths, syncOptions } from "./sambaSource.js";
import { initializeCache, runSyncPasswords, type SyncRun } from "./syncpasswords.js";

/** The accounts syncpasswords watches (its default DirSync filter): normal, non-krbtgt users. */
export const SYNC_FILTER = "(&(objectClass=user)(userAccountControl:1.2.840.113556.1.4.803:=512)(!(sAMAccountName=krbtgt*)))";

/** Who ran it, for the audit trail: the admin behind sudo when there is one. */
function actor(): string {
  return process.env.SUDO_USER ?? process.env.USER ?? userInfo().username;
}

async function countAccounts(ldap: AgentConfig["ldap"]): Promise<number> {
  const tls: ConnectionOptions = {
    ...(ldap.caFile ? { ca: readFileSync(ldap.caFile) } : {}),
    ...(ldap.serverName ? { servername: ldap.serverName } : {}),
    minVersion: "TLSv1.2",
  };
  const client = new Client({ url: ldap.url, timeout: ldap.timeoutMs, connectTimeout: ldap.timeoutMs, ...(ldap.startTls ? {} : { tlsOptions: tls }) });
  try {
    if (ldap.startTls) await client.startTLS(tls);
    await client.bind(ldap.bindDn, readFileSync(ldap.bindPasswordFile, "utf8").trim());
    const { searchEntries } = await client.search(ldap.baseDn, { scope: "sub", filter: SYNC_FILTER, attributes: ["dn"], paged: { pageSize: 500 } });
    return searchEntries.length;
  } finally {
    await client.unbind().catch(() => {});
  }
}

export interface BulkSyncOptions {
  yes: boolean;
  perMinute?: number;
  out(line: string): void;
}

/**
 * `dc-agent samba-bulk-sync`: the explicit, audited way to push every account's *current*
 * password to Entra once (the first run never does it by surprise). Runs a second
 * syncpasswords on a fresh cache of its own, in "bulk" mode: the running agent queues each
 * account's password not yet synced, paced to `perMinute` so live changes keep their share of
 * Graph's write budget. Returns the process exit code.
 */
export async function runBulkSync(config: AgentConfig, o: BulkSyncOptions): Promise<number> {
  if (!config.samba?.enabled) {
    o.out("samba-bulk-sync: this agent has no `samba` section (it is not capturing from a Samba DC)");
    return 2;
  }
  const perMinute = o.perMinute ?? config.samba.bulkPerMinute;
  // One retry: the DC may drop a connection while it is busy.
  const total = await countAccounts(config.ldap).catch(async () => countAccounts(config.ldap));
  const minutes = Math.ceil(total / perMinute);
  if (!o.yes) {
    o.out(`samba-bulk-sync sets the CURRENT password of up to ${total} accounts in Entra (those in the agent's LDAP scope),`);
    o.out(`at most ${perMinute} per minute (about ${minutes} min). It is recorded in ${sambaPaths(config.agent.dataDir).audit}.`);
    o.out("Run it again with --yes to start.");
    return 2;
  }
  const paths = sambaPaths(config.agent.dataDir);
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  const audit = (event: string, fields: Record<string, unknown>) =>
    appendFileSync(paths.audit, `${JSON.stringify({ at: new Date().toISOString(), event, by: actor(), host: hostname(), ...fields })}\n`, { mode: 0o600 });
  const started = Date.now();
  audit("bulkSyncStarted", { accounts: total, perMinute });
  o.out(`samba-bulk-sync: ${total} accounts, at most ${perMinute} per minute; started by ${actor()} (audited)`);

  const cacheLdb = `${paths.dir}/bulk-${started}.ldb`;
  const options = {
    ...syncOptions(config.samba, config.agent.dataDir, cacheLdb),
    env: { PWSYNC_SAMBA_HOOK_MODE: "bulk", PWSYNC_SAMBA_BULK_INTERVAL_MS: String(Math.ceil(60_000 / perMinute)) },
  };
  const counts = { queued: 0, skipped: 0, recorded: 0 };
  let lastReport = 0;
  const report = (force = false) => {
    const handled = counts.queued + counts.skipped + counts.recorded;
    if (!force && Date.now() - lastReport < 5_000) return;
    lastReport = Date.now();
    o.out(`samba-bulk-sync: ${handled}/${total} accounts handled (${counts.queued} queued for Entra, ${counts.skipped + counts.recorded} skipped)`);
  };
  try {
    await initializeCache(options, { info: () => {} } as never);
    // syncpasswords stops at the first error (seen: Samba's ldapi dropping the connection under
    // load); its cache keeps what was done, so a run that made progress is resumed.
    let r: Awaited<SyncRun["exited"]>;
    for (let attempt = 1; ; attempt++) {
      const before = counts.queued + counts.skipped + counts.recorded;
      const run = runSyncPasswords(options, ["--no-wait"]);
      run.onLine((line) => {
        const m = /DONE-EXIT: (queued|recorded|skipped)/.exec(line);
        if (!m) return;
        counts[m[1] as keyof typeof counts]++;
        report();
      });
      r = await run.exited;
      const progressed = counts.queued + counts.skipped + counts.recorded > before;
      if (r.code === 0 || attempt >= 5 || !progressed) break;
      const why = r.tail
        .filter((l) => /ERROR/.test(l))
        .slice(-1)
        .join("");
      audit("bulkSyncResumed", { ...counts, attempt, error: why });
      o.out(`samba-bulk-sync: syncpasswords stopped (${why}); resuming`);
    }
    report(true);
    if (r.code !== 0) {
      const why =
        r.tail
          .filter((l) => /ERROR/.test(l))
          .slice(-2)
          .join(" | ") || r.tail.slice(-2).join(" | ");
      audit("bulkSyncFailed", { ...counts, seconds: Math.round((Date.now() - started) / 1000), error: why });
      o.out(`samba-bulk-sync: stopped (exit ${r.code ?? r.signal}): ${why}`);
      o.out("Is the dc-agent running? Running the command again resumes: accounts already synced are skipped.");
      return 1;
    }
    audit("bulkSyncFinished", { ...counts, seconds: Math.round((Date.now() - started) / 1000) });
    o.out(`samba-bulk-sync: done in ${Math.round((Date.now() - started) / 1000)} s: ${counts.queued} queued, ${counts.skipped + counts.recorded} skipped`);
    return 0;
  } finally {
    for (const f of [cacheLdb, `${cacheLdb}.pid`]) rmSync(f, { force: true });
  }
}
