import { z } from "zod";

/** Faults injected on Graph calls so callers' retry and timeout paths can be exercised. */
export const faultRequestSchema = z.object({
  reset: z.boolean().optional(),
  /** A fixed delay for every call, or one delay per upcoming call (then no delay). */
  latencyMs: z.union([z.number().int().min(0), z.array(z.number().int().min(0))]).optional(),
  fail: z
    .object({
      count: z.number().int().min(1),
      status: z.union([z.literal(429), z.literal(500), z.literal(503)]),
      retryAfterSeconds: z.number().int().min(0).optional(),
      /** Fail only password writes (PATCH), so lookups before them are not consumed. */
      writesOnly: z.boolean().optional(),
    })
    .optional(),
});
export type FaultRequest = z.infer<typeof faultRequestSchema>;

export interface InjectedFailure {
  status: 429 | 500 | 503;
  retryAfterSeconds?: number;
  writesOnly?: boolean;
}

export class FaultPlan {
  private fixedLatencyMs = 0;
  private latencyQueue: number[] = [];
  private failures: InjectedFailure[] = [];

  apply(request: FaultRequest): void {
    if (request.reset) this.reset();
    if (typeof request.latencyMs === "number") {
      this.fixedLatencyMs = request.latencyMs;
      this.latencyQueue = [];
    } else if (Array.isArray(request.latencyMs)) {
      this.fixedLatencyMs = 0;
      this.latencyQueue = [...request.latencyMs];
    }
    if (request.fail) {
      const { count, status, retryAfterSeconds, writesOnly } = request.fail;
      for (let i = 0; i < count; i++) this.failures.push({ status, retryAfterSeconds, writesOnly });
    }
  }

  reset(): void {
    this.fixedLatencyMs = 0;
    this.latencyQueue = [];
    this.failures = [];
  }

  nextLatencyMs(): number {
    return this.latencyQueue.length > 0 ? this.latencyQueue.shift()! : this.fixedLatencyMs;
  }

  nextFailure(isWrite: boolean): InjectedFailure | undefined {
    const next = this.failures[0];
    if (!next || (next.writesOnly && !isWrite)) return undefined;
    return this.failures.shift();
  }

  describe(): { fixedLatencyMs: number; queuedLatencies: number; pendingFailures: number } {
    return { fixedLatencyMs: this.fixedLatencyMs, queuedLatencies: this.latencyQueue.length, pendingFailures: this.failures.length };
  }
}
