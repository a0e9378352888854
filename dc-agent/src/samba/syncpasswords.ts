import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import type { Logger } from "@pwsync/log";

/** The attributes the hook needs; virtualClearTextUTF16 is exactly what the filter frames carry. */
export const SYNC_ATTRIBUTES = [
  "objectGUID",
  "sAMAccountName",
  "userPrincipalName",
  "pwdLastSet",
  "msDS-KeyVersionNumber",
  "userAccountControl",
  "virtualClearTextUTF16",
];

export interface SyncPasswordsOptions {
  sambaTool: string;
  smbConf: string;
  /** The agent's keyring (the GPG key pair that decrypts Samba's Primary:SambaGPG blobs). */
  gnupgHome: string;
  cacheLdb: string;
  hookScript: string;
  hookSocket: string;
  /** Extra environment (the bulk command sets the hook's mode). */
  env?: Record<string, string>;
}

function baseEnv(o: SyncPasswordsOptions): NodeJS.ProcessEnv {
  // The hook is `#!/usr/bin/env node`: this Node first on PATH, whatever root's PATH says.
  const nodeDir = process.execPath.slice(0, process.execPath.lastIndexOf("/"));
  return {
    ...process.env,
    PATH: `${nodeDir}:${process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin"}`,
    GNUPGHOME: o.gnupgHome,
    PWSYNC_SAMBA_HOOK_SOCKET: o.hookSocket,
    ...o.env,
  };
}

/** Lines of samba-tool's output that are safe to log: it redacts secrets as `attr:: REDACTED`, we drop every `::` line to be sure. */
export function loggableLine(line: string): boolean {
  return line.trim().length > 0 && !line.includes("::") && !/cleartext|unicodePwd|supplementalCredentials/i.test(line);
}

export interface SyncRun {
  pid: number | undefined;
  /** Resolves with the exit code (or signal name) when samba-tool ends. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; tail: string[] }>;
  /** Lines seen so far (filtered); the bulk command counts deliveries with it. */
  onLine(listener: (line: string) => void): void;
  stop(): void;
}

export function runSyncPasswords(o: SyncPasswordsOptions, args: string[]): SyncRun {
  const child = spawn(o.sambaTool, ["user", "syncpasswords", "-s", o.smbConf, `--cache-ldb=${o.cacheLdb}`, ...args], {
    env: baseEnv(o),
    stdio: ["ignore", "pipe", "pipe"],
  });
  const tail: string[] = [];
  const listeners: ((line: string) => void)[] = [];
  let partial = "";
  const onData = (c: Buffer) => {
    const text = partial + c.toString("utf8");
    const lines = text.split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) {
      if (!loggableLine(line)) continue;
      // Python's traceback follows the line that says what went wrong; keep that one.
      if (!/^\s/.test(line) && !line.startsWith("Traceback")) {
        tail.push(line);
        if (tail.length > 20) tail.shift();
      }
      for (const l of listeners) l(line);
    }
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; tail: string[] }>((resolve) => {
    child.on("error", (err) => {
      tail.push(`cannot start ${o.sambaTool}: ${err.message}`);
      resolve({ code: -1, signal: null, tail });
    });
    child.on("close", (code, signal) => resolve({ code, signal, tail }));
  });
  return { pid: child.pid, exited, onLine: (l) => listeners.push(l), stop: () => child.kill("SIGTERM") };
}

/** Creates the cache ldb that records the hook, the attributes and gpg decryption (once per cache). */
export async function initializeCache(o: SyncPasswordsOptions, logger: Logger): Promise<void> {
  if (existsSync(o.cacheLdb)) return;
  const run = runSyncPasswords(o, ["--cache-ldb-initialize", "--decrypt-samba-gpg", `--attributes=${SYNC_ATTRIBUTES.join(",")}`, `--script=${o.hookScript}`]);
  const r = await run.exited;
  if (r.code !== 0)
    throw new Error(`samba-tool user syncpasswords --cache-ldb-initialize failed (exit ${r.code ?? r.signal}): ${r.tail.slice(-5).join(" | ")}`);
  logger.info({ cache: o.cacheLdb, hook: o.hookScript }, "samba syncpasswords cache initialised");
}

/**
 * A syncpasswords left over from a previous agent (killed with -9: the child outlives it)
 * holds the cache's lock; it would die at its next delivery, but would block our start until
 * then. Only a process whose command line is syncpasswords is signalled.
 */
export function stopLeftover(cacheLdb: string, logger: Logger): void {
  const pidFile = `${cacheLdb}.pid`;
  if (!existsSync(pidFile)) return;
  const pid = Number.parseInt(readFileSync(pidFile, "utf8").trim(), 10);
  if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) return;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    if (!cmdline.includes("syncpasswords")) return;
    process.kill(pid, "SIGTERM");
    logger.warn({ pid }, "stopped a samba syncpasswords left by a previous agent run");
  } catch {
    // Not running any more.
  }
}

/** Restart delay after the n-th failure in a row (pure): doubling from `minMs`, capped at `maxMs`. */
export function restartDelay(failuresInARow: number, minMs: number, maxMs: number): number {
  return Math.min(maxMs, minMs * 2 ** Math.max(0, failuresInARow - 1));
}
