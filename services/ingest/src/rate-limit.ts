export interface RateLimit {
  /** Sustained changes per second one agent may submit. */
  perSecond: number;
  /** Changes an agent may submit at once after being quiet (a DC's backlog after an outage). */
  burst: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * A token bucket per agent (shared by all of that agent's streams). `take` answers how long the
 * caller must wait before its next change may be committed: 0 when a token is available. Ingest
 * waits rather than refuses, and meanwhile stops reading the stream, so the excess stays queued
 * on the DC (gRPC/HTTP2 flow control) instead of in ingest's memory.
 */
export class AgentRateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly limit: RateLimit) {}

  take(agentId: string, now: number): number {
    const bucket = this.buckets.get(agentId) ?? { tokens: this.limit.burst, at: now };
    bucket.tokens = Math.min(this.limit.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.limit.perSecond);
    bucket.at = now;
    this.buckets.set(agentId, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - bucket.tokens) / this.limit.perSecond) * 1000);
  }
}
