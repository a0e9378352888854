/**
 * Sliding-window write budget per app, modelled on Graph's identity write limit
 * (3,000 writes per 150 s per app per tenant). Time is injected so tests stay deterministic.
 */
export interface WriteBudget {
  writes: number;
  windowMs: number;
}

export const DOCUMENTED_WRITE_BUDGET: WriteBudget = { writes: 3000, windowMs: 150_000 };

export type BudgetDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

export class WriteThrottle {
  private readonly history = new Map<string, number[]>();
  /** Most writes any app had in one window so far: how much of the budget callers really used. */
  peakWritesInWindow = 0;

  constructor(
    private readonly budget: WriteBudget,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records a write for `appId` if the budget allows it. */
  tryWrite(appId: string): BudgetDecision {
    const now = this.now();
    const recent = (this.history.get(appId) ?? []).filter((at) => now - at < this.budget.windowMs);
    if (recent.length >= this.budget.writes) {
      this.history.set(appId, recent);
      const oldest = recent[0]!;
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((oldest + this.budget.windowMs - now) / 1000)) };
    }
    recent.push(now);
    this.history.set(appId, recent);
    this.peakWritesInWindow = Math.max(this.peakWritesInWindow, recent.length);
    return { allowed: true };
  }

  reset(): void {
    this.history.clear();
    this.peakWritesInWindow = 0;
  }
}
