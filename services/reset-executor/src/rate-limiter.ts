/**
 * Keeps Graph writes under a budget of `limit` per sliding `windowMs`, exactly: a write is
 * allowed when fewer than `limit` writes happened in the last window. A 429's Retry-After pauses
 * everything until then, since Graph throttles per app, not per user.
 */
/** In memory, per process: for tests and single-process tools; services share SharedWriteBudget. */
export class SlidingWindowLimiter {
  private readonly stamps: number[] = [];
  private pausedUntil = 0;

  constructor(
    private limit: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Replicas share the app's budget: each gets its part. */
  setLimit(limit: number): void {
    this.limit = Math.max(1, Math.floor(limit));
  }

  pauseUntil(epochMs: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, epochMs);
  }

  async pauseFor(ms: number): Promise<void> {
    this.pauseUntil(this.now() + ms);
  }

  /** Milliseconds to wait before the next write may go; 0 means now (and records the write). */
  tryAcquire(): number {
    const now = this.now();
    if (now < this.pausedUntil) return this.pausedUntil - now;
    while (this.stamps.length > 0 && this.stamps[0]! <= now - this.windowMs) this.stamps.shift();
    if (this.stamps.length < this.limit) {
      this.stamps.push(now);
      return 0;
    }
    return Math.max(1, this.stamps[0]! + this.windowMs - now);
  }

  /** Waits for a slot; resolves with the time waited in ms. */
  async acquire(sleep: (ms: number) => Promise<unknown>): Promise<number> {
    const started = this.now();
    for (;;) {
      const wait = this.tryAcquire();
      if (wait === 0) return this.now() - started;
      await sleep(wait);
    }
  }
}

/** Exponential backoff with full jitter (AWS architecture blog), capped. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.max(baseMs / 2, Math.round(random() * ceiling));
}
