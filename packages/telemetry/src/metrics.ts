import { metrics, type Counter, type Histogram } from "@opentelemetry/api";

// The instruments every service shares, by name, so dashboards find them whichever service
// records. No attribute ever holds an account name or anything secret: outcomes and codes only.

export interface PwsyncMetrics {
  /** Terminal outcomes: outcome = password_set | failed | superseded | resolution_failed. */
  changes: Counter;
  /** Graph request latency in ms: operation = lookup | set_password, status = HTTP status. */
  graphLatency: Histogram;
  /** Graph answered 429. */
  graphThrottled: Counter;
  /** Alerts: result = sent | throttled | failed, role = admin | end_user | watchdog. */
  alerts: Counter;
}

let cached: PwsyncMetrics | undefined;

export function pwsyncMetrics(): PwsyncMetrics {
  const meter = metrics.getMeter("pwsync");
  cached ??= {
    changes: meter.createCounter("pwsync.changes", { description: "password changes by terminal outcome" }),
    graphLatency: meter.createHistogram("pwsync.graph.duration", { description: "Microsoft Graph request latency", unit: "ms" }),
    graphThrottled: meter.createCounter("pwsync.graph.throttled", { description: "Graph 429 answers" }),
    alerts: meter.createCounter("pwsync.alerts", { description: "alert emails by result" }),
  };
  return cached;
}

/**
 * Observable gauges read on each collection: consumer lag per group, agent queue depth per agent.
 * `read` is called by the SDK at export time only.
 */
export function observeBacklog(read: () => Promise<{ consumerLag: Record<string, number>; agentQueueDepth: Record<string, number> }>): void {
  const meter = metrics.getMeter("pwsync");
  const lag = meter.createObservableGauge("pwsync.consumer.lag", { description: "committed events not yet processed, per consumer group" });
  const queue = meter.createObservableGauge("pwsync.agent.queue_depth", { description: "changes queued on a domain controller's agent" });
  meter.addBatchObservableCallback(
    async (observer) => {
      const backlog = await read().catch(() => undefined);
      if (!backlog) return;
      for (const [group, value] of Object.entries(backlog.consumerLag)) observer.observe(lag, value, { group });
      for (const [agent, value] of Object.entries(backlog.agentQueueDepth)) observer.observe(queue, value, { agent });
    },
    [lag, queue],
  );
}
