import { metrics, propagation } from "@opentelemetry/api";
// The propagator's own module, not the package's entry point: every service loads it at start,
// and the entry point loads all of @opentelemetry/core (1 MB more heap, telemetry off or on).
import { W3CTraceContextPropagator } from "@opentelemetry/core/build/src/trace/W3CTraceContextPropagator.js";
import type { MetricReader } from "@opentelemetry/sdk-metrics";
import type { SpanExporter } from "@opentelemetry/sdk-trace-base";
import { z } from "zod";
import { RedactingSpanProcessor } from "./redaction.js";

/** `telemetry:` in pwsync.yaml (PWSYNC_TELEMETRY__ENABLED=true, PWSYNC_TELEMETRY__OTLP_ENDPOINT=…). */
export const telemetrySection = z
  .object({
    /** Off by default: nothing is exported unless asked for. */
    enabled: z.boolean().default(false),
    /** OTLP/HTTP base URL of the collector (traces at /v1/traces, metrics at /v1/metrics). */
    otlpEndpoint: z.string().url().default("http://localhost:4318"),
    metricsIntervalMs: z.number().int().min(1000).default(15_000),
    /**
     * Serve metrics for Prometheus to scrape at http://<host>:<port>/metrics instead of pushing
     * them over OTLP (traces still go to otlpEndpoint when enabled). Compose uses this: its
     * Prometheus scrapes every service directly. Unset: metrics go to the collector over OTLP.
     */
    prometheus: z.object({ port: z.number().int().min(0).max(65535), host: z.string().default("0.0.0.0") }).optional(),
  })
  .default({ enabled: false, otlpEndpoint: "http://localhost:4318", metricsIntervalMs: 15_000 });

export type TelemetrySettings = z.infer<typeof telemetrySection>;

export interface TelemetryOptions {
  serviceName: string;
  settings?: Partial<TelemetrySettings>;
  /** Tests: export spans here (synchronously) instead of OTLP; turns tracing on. */
  spanExporter?: SpanExporter;
  /** Tests: read metrics here instead of OTLP; turns metrics on. */
  metricReader?: MetricReader;
  /** How long shutdown may spend flushing to the collector (default 3 s). */
  shutdownTimeoutMs?: number;
}

export interface Telemetry {
  readonly enabled: boolean;
  /** Waits until every ended span has been handed to the exporter. */
  flush(): Promise<void>;
  /**
   * Flushes and stops, best effort: never rejects, and gives up after shutdownTimeoutMs, so an
   * unreachable collector neither fails a clean stop nor holds it past its grace period.
   */
  shutdown(): Promise<void>;
}

/**
 * Starts the OpenTelemetry SDK for a service: OTLP export when enabled, the redaction guard in
 * front of every exporter, W3C trace context. When disabled nothing is started, but the W3C
 * propagator is still registered so trace context keeps flowing through events.
 *
 * The SDK and its exporters are imported only when telemetry is on: loaded, they hold about
 * 10 MB of a service's memory (sdk-node alone carries a 2.4 MB precompiled configuration
 * validator), which a service with telemetry off would carry for nothing.
 */
export async function startTelemetry(options: TelemetryOptions): Promise<Telemetry> {
  const settings = telemetrySection.parse(options.settings ?? {});
  const enabled = settings.enabled || settings.prometheus !== undefined || options.spanExporter !== undefined || options.metricReader !== undefined;
  if (!enabled) {
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    return { enabled: false, flush: async () => {}, shutdown: async () => {} };
  }
  const [
    { OTLPMetricExporter },
    { PrometheusExporter },
    { OTLPTraceExporter },
    { resourceFromAttributes },
    { PeriodicExportingMetricReader },
    { NodeSDK },
    { BatchSpanProcessor, SimpleSpanProcessor },
  ] = await Promise.all([
    import("@opentelemetry/exporter-metrics-otlp-http"),
    import("@opentelemetry/exporter-prometheus"),
    import("@opentelemetry/exporter-trace-otlp-http"),
    import("@opentelemetry/resources"),
    import("@opentelemetry/sdk-metrics"),
    import("@opentelemetry/sdk-node"),
    import("@opentelemetry/sdk-trace-base"),
  ]);
  const otlp = settings.otlpEndpoint.replace(/\/$/, "");
  const exporter = options.spanExporter ?? (settings.enabled ? new OTLPTraceExporter({ url: `${otlp}/v1/traces` }) : undefined);
  const metricReader =
    options.metricReader ??
    (settings.prometheus
      ? new PrometheusExporter({ host: settings.prometheus.host, port: settings.prometheus.port })
      : settings.enabled
        ? new PeriodicExportingMetricReader({
            exporter: new OTLPMetricExporter({ url: `${otlp}/v1/metrics` }),
            exportIntervalMillis: settings.metricsIntervalMs,
          })
        : undefined);
  const exportProcessor = exporter ? (options.spanExporter ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter)) : undefined;
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({ "service.name": options.serviceName, "service.namespace": "pwsync" }),
    spanProcessors: exportProcessor ? [new RedactingSpanProcessor(), exportProcessor] : [],
    ...(metricReader ? { metricReaders: [metricReader] } : {}),
    textMapPropagator: new W3CTraceContextPropagator(),
    instrumentations: [],
  });
  sdk.start();
  return {
    enabled: true,
    flush: async () => exportProcessor?.forceFlush(),
    shutdown: async () => {
      let timer: NodeJS.Timeout | undefined;
      const budget = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, options.shutdownTimeoutMs ?? 3000);
      });
      await Promise.race([sdk.shutdown().catch(() => undefined), budget]);
      clearTimeout(timer);
      metrics.disable();
    },
  };
}

/** The `telemetry:` section alone, for services whose own schema does not include it. */
export const telemetryConfigSchema = z.object({ telemetry: telemetrySection });
