import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import type { Logger } from "@pwsync/log";
import type { AgentConfig } from "../config.js";
import type { CapturedPassword } from "../capture/capture.js";
import type { AckStatus } from "../frame/index.js";
import { decideDelivery, type DeliveryMode } from "./decide.js";
import { startHookServer, type HookReply, type HookRequest } from "./hookServer.js";
import { parseSyncLdif } from "./ldif.js";
import { readSambaState, writeSambaState, type SambaState } from "./state.js";
import { initializeCache, restartDelay, runSyncPasswords, stopLeftover, type SyncPasswordsOptions, type SyncRun } from "./syncpasswords.js";

export type SambaConfig = NonNullable<AgentConfig["samba"]>;

const FILETIME_UNIX_EPOCH_MS = 11644473600000n;
export const filetimeNow = (now = Date.now()): bigint => (BigInt(now) + FILETIME_UNIX_EPOCH_MS) * 10000n;
const filetimeToDate = (ft: bigint): Date => new Date(Number(ft / 10000n - FILETIME_UNIX_EPOCH_MS));

export function sambaPaths(dataDir: string) {
  const dir = path.join(dataDir, "samba");
  return { dir, state: path.join(dir, "accounts.json"), cacheLdb: path.join(dir, "syncpasswords-cache.ldb"), audit: path.join(dir, "audit.log") };
}

export function syncOptions(config: SambaConfig, dataDir: string, cacheLdb = sambaPaths(dataDir).cacheLdb): SyncPasswordsOptions {
  return {
    sambaTool: config.sambaTool,
    smbConf: config.smbConf,
    gnupgHome: config.gnupgHome,
    cacheLdb,
    hookScript: config.hookScript,
    hookSocket: config.hookSocket,
  };
}

export interface SambaSource {
  /** True while syncpasswords runs (the heartbeat's "capture source loaded"). */
  running(): boolean;
  stop(): Promise<void>;
}

/**
 * Captures password changes on a Samba AD DC through `samba-tool user syncpasswords`: after
 * Samba has committed a change, it runs our hook with the account's LDIF (cleartext decrypted
 * with the agent's GPG key); the hook hands it to this process, which decides (dedup, order,
 * first run) and feeds it to the same pipeline as a Windows filter frame — sealing, durable
 * queue, LDAP scope, stream. syncpasswords is supervised here: restarted with backoff, an
 * alarm when it stays down, and the heartbeat says whether it runs.
 */
export async function startSambaSource(
  config: SambaConfig,
  dataDir: string,
  handle: (change: CapturedPassword) => Promise<AckStatus>,
  logger: Logger,
): Promise<SambaSource> {
  const log = logger.child({ source: "samba" });
  const paths = sambaPaths(dataDir);
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  const state: SambaState = readSambaState(paths.state);
  const options = syncOptions(config, dataDir);
  let mode: DeliveryMode = state.baseline?.done ? { kind: "live" } : { kind: "baseline", startedAt: state.baseline?.startedAt ?? filetimeNow() };
  let lastBulkAt = 0;
  // One delivery at a time (live and an admin's bulk run may overlap): decisions read and
  // write the same memory.
  let chain: Promise<unknown> = Promise.resolve();

  const deliver = async (req: HookRequest): Promise<HookReply> => {
    const parsed = parseSyncLdif(req.ldif);
    req.ldif.fill(0);
    if (!parsed.ok) {
      // Deterministic: a retry would fail the same way and stop every later change behind it.
      log.error({ reason: parsed.reason }, "ALARM: samba delivery not understood; skipped");
      return { ok: true, message: `skipped: ${parsed.reason}` };
    }
    const a = parsed.account;
    try {
      const deliveryMode: DeliveryMode = req.mode === "bulk" ? { kind: "bulk" } : mode;
      const known = state.accounts.get(a.objectGuid);
      const decision = decideDelivery(
        known,
        { pwdLastSet: a.pwdLastSet, keyVersion: a.keyVersion, isDeleted: a.isDeleted, hasClearText: Boolean(a.clearTextUtf16) },
        deliveryMode,
      );
      const fields = {
        account: a.sAMAccountName,
        objectGuid: a.objectGuid,
        pwdLastSet: a.pwdLastSet.toString(),
        keyVersion: a.keyVersion,
        mode: deliveryMode.kind,
      };
      if (decision.action === "queue") {
        if (req.mode === "bulk" && req.intervalMs > 0) {
          const wait = lastBulkAt + req.intervalMs - Date.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          lastBulkAt = Date.now();
        }
        const frame: CapturedPassword = {
          accountName: a.sAMAccountName,
          accountNameUtf16le: Buffer.from(a.sAMAccountName, "utf16le"),
          password: a.clearTextUtf16!,
          // The change id is derived from these: a redelivery of the same write gets the same id
          // (ingest stores it once). The DC's pwdLastSet is the capture time the server side
          // orders by; pwdLastSet = 0 ("must change at next logon") has no time, so it is
          // captured now (a redelivery is then caught by accounts.json, not by the id).
          sequence: BigInt(a.keyVersion ?? 0),
          capturedAtFiletime: a.pwdLastSet > 0n ? a.pwdLastSet : filetimeNow(),
          capturedAt: a.pwdLastSet > 0n ? filetimeToDate(a.pwdLastSet) : new Date(),
        };
        const status = await handle(frame);
        if (status !== "accepted") {
          log.warn(fields, "samba change not accepted by the pipeline yet; syncpasswords will deliver it again");
          return { ok: false, message: "agent cannot take the change now (retry later)" };
        }
      } else {
        log.info(
          { ...fields, reason: decision.action === "skip" ? decision.reason : decision.reason },
          decision.action === "skip" ? "samba delivery skipped" : "samba delivery recorded",
        );
      }
      if (decision.action !== "skip") state.accounts.set(a.objectGuid, decision.remember);
      state.lastDeliveryAt = new Date();
      writeSambaState(paths.state, state);
      return { ok: true, message: decision.action === "queue" ? "queued" : decision.action === "remember" ? "recorded" : `skipped: ${decision.reason}` };
    } finally {
      a.clearTextUtf16?.fill(0);
    }
  };
  const hook = await startHookServer(
    config.hookSocket,
    (req) => {
      const next = chain.then(() => deliver(req));
      chain = next.catch(() => {});
      return next;
    },
    log,
  );

  let current: SyncRun | undefined;
  let up = false;
  let stopping = false;
  let downSince: number | undefined = Date.now();
  let alarmRaised = false;
  let wake: (() => void) | undefined;
  const sleep = (ms: number) =>
    new Promise<void>((r) => {
      const t = setTimeout(r, ms);
      wake = () => {
        clearTimeout(t);
        r();
      };
    });
  const alarmTimer = setInterval(
    () => {
      if (!up && downSince !== undefined && !alarmRaised && Date.now() - downSince >= config.alarmAfterMs && !stopping) {
        alarmRaised = true;
        log.error(
          { alarm: "sambaCaptureDown", downSeconds: Math.floor((Date.now() - downSince) / 1000) },
          "ALARM raised: samba syncpasswords is not running; password changes on this DC are not captured until it is (they are delivered once it runs again)",
        );
      }
    },
    Math.min(5_000, config.alarmAfterMs),
  );
  alarmTimer.unref();
  const markUp = () => {
    up = true;
    downSince = undefined;
    if (alarmRaised) {
      alarmRaised = false;
      log.info({ alarm: "sambaCaptureDown" }, "alarm cleared: samba syncpasswords runs again");
    }
  };

  const supervise = async () => {
    let failures = 0;
    while (!stopping) {
      const started = Date.now();
      try {
        stopLeftover(options.cacheLdb, log);
        await initializeCache(options, log);
        if (mode.kind === "baseline") {
          if (!state.baseline) {
            state.baseline = { startedAt: mode.startedAt, done: false };
            writeSambaState(paths.state, state);
          }
          log.info({}, "samba first run: recording every account's current password version without syncing (use `dc-agent samba-bulk-sync` to sync them all)");
        }
        // The baseline pass ends once every pending change is consumed; live runs wait for notifications.
        current = runSyncPasswords(options, mode.kind === "baseline" ? ["--no-wait"] : []);
        markUp();
        log.info({ pid: current.pid, mode: mode.kind }, "samba syncpasswords started");
        const r = await current.exited;
        up = false;
        downSince ??= Date.now();
        current = undefined;
        if (stopping) break;
        if (mode.kind === "baseline" && r.code === 0) {
          state.baseline = { startedAt: mode.startedAt, done: true };
          writeSambaState(paths.state, state);
          mode = { kind: "live" };
          log.info({ accounts: state.accounts.size }, "samba first run done: accounts recorded; live capture starts");
          failures = 0;
          continue;
        }
        throw new Error(`samba syncpasswords exited (${r.code ?? r.signal}): ${r.tail.slice(-8).join(" | ")}`);
      } catch (err) {
        up = false;
        downSince ??= Date.now();
        if (stopping) break;
        failures = Date.now() - started > 60_000 ? 1 : failures + 1;
        const delay = restartDelay(failures, config.restartBackoff.minMs, config.restartBackoff.maxMs);
        log.warn({ err: (err as Error).message, restartInMs: delay, failuresInARow: failures }, "samba capture down; restarting");
        await sleep(delay);
      }
    }
  };
  const supervising = supervise();
  if (!existsSync(options.hookScript)) log.error({ hook: options.hookScript }, "samba hook script not found");

  return {
    running: () => up,
    async stop() {
      stopping = true;
      clearInterval(alarmTimer);
      current?.stop();
      wake?.();
      await supervising;
      await chain;
      await hook.close();
    },
  };
}
