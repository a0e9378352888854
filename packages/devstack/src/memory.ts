import { readFileSync } from "node:fs";

/** Resident set size in MB from the text of /proc/<pid>/status (its VmRSS line, in kB), if present. */
export function residentMbFromStatus(status: string): number | undefined {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  return match ? Math.round(Number(match[1]) / 1024) : undefined;
}

/** A process's resident set size in MB, or undefined once it has gone (or off Linux). */
export function residentMb(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    return residentMbFromStatus(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return undefined;
  }
}

/**
 * One figure per service from per-instance figures ("resolver#0", "resolver#1" → "resolver"):
 * the largest, since the budget holds for every replica.
 */
export function largestPerService(byInstance: Record<string, number | undefined>): Record<string, number> {
  const byService: Record<string, number> = {};
  for (const [instance, mb] of Object.entries(byInstance)) {
    if (mb === undefined) continue;
    const service = instance.split("#")[0]!;
    byService[service] = Math.max(byService[service] ?? 0, mb);
  }
  return byService;
}
