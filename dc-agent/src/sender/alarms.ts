import type { Logger } from "@pwsync/log";

export interface QueueFacts {
  depth: number;
  oldestAgeMs: number;
  /** The filter's spool folder: files waiting to be drained, and the oldest one's capture age. */
  spool?: { depth: number; oldestAgeMs: number };
}

export interface AlarmThresholds {
  queueAgeMs: number;
  queueDepth: number;
  /** A spooled file is drained within one scan of a running agent; older means it is stuck. */
  spoolAgeMs?: number;
}

export type AlarmName = "queueAge" | "queueDepth" | "spoolAge";

const MESSAGES: Record<AlarmName, string> = {
  queueAge: "oldest queued change is older than the threshold",
  queueDepth: "queue holds more changes than the threshold",
  spoolAge: "a change has waited in the filter's spool folder longer than the threshold (the agent cannot drain it)",
};

/** Which alarms are active for the queue's current state (pure). */
export function activeAlarms(facts: QueueFacts, t: AlarmThresholds): AlarmName[] {
  const out: AlarmName[] = [];
  if (facts.depth > 0 && facts.oldestAgeMs >= t.queueAgeMs) out.push("queueAge");
  if (facts.depth >= t.queueDepth) out.push("queueDepth");
  if (t.spoolAgeMs !== undefined && facts.spool && facts.spool.depth > 0 && facts.spool.oldestAgeMs >= t.spoolAgeMs) out.push("spoolAge");
  return out;
}

/**
 * Nothing is ever dropped to make room (unlike PCNS's 72 h / oldest-out queue); instead an
 * alarm is logged when it is raised, repeated while it lasts, and its clearing is logged.
 */
export class QueueAlarms {
  private readonly since = new Map<AlarmName, number>();
  private lastRepeat = 0;

  constructor(
    private readonly thresholds: AlarmThresholds,
    private readonly logger: Logger,
    private readonly repeatMs = 10 * 60_000,
  ) {}

  check(facts: QueueFacts, now = Date.now()): AlarmName[] {
    const active = activeAlarms(facts, this.thresholds);
    const fields = {
      queueDepth: facts.depth,
      oldestAgeSeconds: Math.floor(facts.oldestAgeMs / 1000),
      ...(facts.spool ? { spoolDepth: facts.spool.depth, oldestSpooledAgeSeconds: Math.floor(facts.spool.oldestAgeMs / 1000) } : {}),
      thresholds: this.thresholds,
    };
    for (const name of active) {
      if (!this.since.has(name)) {
        this.since.set(name, now);
        this.logger.error({ alarm: name, ...fields }, `ALARM raised: ${MESSAGES[name]} (nothing is dropped)`);
        this.lastRepeat = now;
      }
    }
    for (const name of [...this.since.keys()]) {
      if (!active.includes(name)) {
        this.since.delete(name);
        this.logger.info({ alarm: name, ...fields }, "alarm cleared");
      }
    }
    if (this.since.size > 0 && now - this.lastRepeat >= this.repeatMs) {
      this.lastRepeat = now;
      this.logger.error({ alarms: [...this.since.keys()], ...fields }, "ALARM still active");
    }
    return active;
  }
}
