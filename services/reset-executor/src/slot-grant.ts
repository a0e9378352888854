/**
 * How many Graph write slots to grant now, and how long the rest wait: the pure half of the
 * shared write budget (write-budget.ts reads the counts under its lock and records the grants).
 *
 * Two sliding windows. The budget's own (Graph's documented limit, minus headroom), and a tenth
 * of it holding a tenth of the writes: without the second, a full window is granted in one burst
 * the moment the oldest writes leave it, so the writes of two consecutive bursts reach Graph in
 * one of its windows whenever the second burst travels faster than the first — a few hundred
 * milliseconds of jitter then overflow Graph's window by nearly a whole budget. Paced to a tenth,
 * the overlap two bursts can make is a tenth of the budget, which the headroom absorbs.
 */
export interface SlotCounts {
  wanted: number;
  /** Milliseconds left of a Retry-After pause, if one is running. */
  pausedMs: number | null;
  window: { limit: number; used: number; oldestLeavesInMs: number | null; lengthMs: number };
  pace: { limit: number; used: number; oldestLeavesInMs: number | null; lengthMs: number } | undefined;
}

/** One wait per writer, in order: 0 means granted now. */
export function grantSlots(counts: SlotCounts): number[] {
  const { wanted, pausedMs, window, pace } = counts;
  if (pausedMs !== null && pausedMs > 0) return Array.from({ length: wanted }, () => pausedMs);
  const windowLeft = Math.max(0, window.limit - window.used);
  const paceLeft = pace ? Math.max(0, pace.limit - pace.used) : Number.POSITIVE_INFINITY;
  const granted = Math.min(wanted, windowLeft, paceLeft);
  // The rest wait until the window that ran out frees a slot: its oldest write leaves (a write
  // granted just now counts as the oldest when the window held nothing older).
  const binding = pace && paceLeft - granted <= windowLeft - granted ? pace : window;
  const rest = Math.max(1, binding.oldestLeavesInMs ?? binding.lengthMs);
  return Array.from({ length: wanted }, (_, i) => (i < granted ? 0 : rest));
}

/** The pacing window for a budget: a tenth of the window with a tenth of the writes (at least one). */
export function paceFor(limit: number, windowMs: number): { limit: number; windowMs: number } {
  return { limit: Math.max(1, Math.floor(limit / 10)), windowMs: windowMs / 10 };
}
