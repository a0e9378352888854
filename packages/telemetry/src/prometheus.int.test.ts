import { freePort } from "@pwsync/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { observeBacklog, pwsyncMetrics, recordGraphAttempt, startTelemetry, type Telemetry } from "./index.js";

// telemetry.prometheus: the service itself serves /metrics in Prometheus' text format (what the
// compose file's Prometheus scrapes), with the names the health dashboard queries.

let telemetry: Telemetry;
let port: number;

beforeAll(async () => {
  port = await freePort();
  telemetry = await startTelemetry({ serviceName: "prometheus-test", settings: { prometheus: { host: "127.0.0.1", port } } });
});
afterAll(async () => {
  await telemetry.shutdown();
});

const scrape = async () => {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(res.status).toBe(200);
  return res.text();
};

describe("telemetry.prometheus", () => {
  it("serves counters, histograms and backlog gauges under the dashboard's metric names, without OTLP", async () => {
    expect(telemetry.enabled).toBe(true);
    pwsyncMetrics().changes.add(1, { outcome: "password_set" });
    recordGraphAttempt("set_password", 42, 429);
    observeBacklog(async () => ({ consumerLag: { resolver: 3 }, agentQueueDepth: { dc01: 0 } }));
    let text = "";
    for (let i = 0; i < 50 && !text.includes("pwsync_consumer_lag{"); i++) text = await scrape();
    // (The exporter adds an otel_scope_name label; Prometheus adds job and instance.)
    expect(text).toMatch(/^pwsync_changes_total\{outcome="password_set"[^}]*\} 1$/m);
    expect(text).toMatch(/^pwsync_graph_throttled_total\{operation="set_password"[^}]*\} 1$/m);
    // No unit in the name: deploy/compose/prometheus.yml renames it to the collector's
    // pwsync_graph_duration_milliseconds_* at scrape time.
    expect(text).toMatch(/^pwsync_graph_duration_bucket\{operation="set_password"[^}]*le="50"\} 1$/m);
    expect(text).toMatch(/^pwsync_consumer_lag\{group="resolver"[^}]*\} 3$/m);
    expect(text).toMatch(/^pwsync_agent_queue_depth\{agent="dc01"[^}]*\} 0$/m);
  });

  it("stops serving when the service shuts down", async () => {
    await telemetry.shutdown();
    await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
    telemetry = await startTelemetry({ serviceName: "prometheus-test" });
  });
});

describe("telemetry shutdown", () => {
  it("resolves, without throwing, when the collector's name does not resolve", async () => {
    const t = await startTelemetry({ serviceName: "shutdown-test", settings: { enabled: true, otlpEndpoint: "http://otel-collector.invalid:4318" } });
    pwsyncMetrics().changes.add(1, { outcome: "password_set" });
    await expect(t.shutdown()).resolves.toBeUndefined();
  });

  it("gives up after its budget when the collector accepts connections but never answers", async () => {
    const { createServer } = await import("node:net");
    const sockets: import("node:net").Socket[] = [];
    const blackHole = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => blackHole.listen(0, "127.0.0.1", resolve));
    const { port: holePort } = blackHole.address() as { port: number };
    const t = await startTelemetry({
      serviceName: "shutdown-test",
      settings: { enabled: true, otlpEndpoint: `http://127.0.0.1:${holePort}` },
      shutdownTimeoutMs: 300,
    });
    pwsyncMetrics().changes.add(1, { outcome: "password_set" });
    await expect(t.shutdown()).resolves.toBeUndefined();
    for (const s of sockets) s.destroy();
    blackHole.close();
  });
});
