import { readdirSync } from "node:fs";
import path from "node:path";
import { FILETIME_UNIX_EPOCH, spoolDrainOrder } from "../frame/index.js";

/**
 * Where filter and agent meet without anyone configuring it: the filter's default
 * (%ProgramData%\pwsync\spool, lsa-filter/src/config.c) on Windows; elsewhere (tests, Samba
 * DCs, where no filter runs) a folder in the agent's data directory.
 */
export function defaultSpoolDir(platform: NodeJS.Platform, env: NodeJS.ProcessEnv, dataDir: string): string {
  if (platform === "win32") return path.win32.join(env.ProgramData ?? env.ALLUSERSPROFILE ?? "C:\\ProgramData", "pwsync", "spool");
  return path.join(dataDir, "spool");
}

export interface SpoolFacts {
  depth: number;
  /** Age of the oldest spooled change, by the capture time in its name; 0 when empty. */
  oldestAgeMs: number;
}

/** From the file names alone (`<sequence>-<captured_at>.pwsf`): no file is opened (pure). */
export function spoolFactsOf(names: readonly string[], now: number): SpoolFacts {
  const files = spoolDrainOrder(names);
  let oldest = Number.POSITIVE_INFINITY;
  for (const name of files) {
    const filetime = BigInt(`0x${name.slice(17, 33)}`);
    oldest = Math.min(oldest, Number((filetime - FILETIME_UNIX_EPOCH) / 10_000n));
  }
  return { depth: files.length, oldestAgeMs: files.length ? Math.max(0, now - oldest) : 0 };
}

export function readSpoolFacts(dir: string, now = Date.now()): SpoolFacts {
  try {
    return spoolFactsOf(readdirSync(dir), now);
  } catch {
    return { depth: 0, oldestAgeMs: 0 }; // no folder: the filter never spooled
  }
}
