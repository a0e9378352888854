import { metrics, propagation } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { PeriodicExportingMetricReader, type MetricReader } from "@opentelemetry/sdk-metrics";
import { NodeSDK } from "@opentelemetry/sdk-node";
import { BatchSpanProcessor, SimpleSpanProcessor, type SpanExporter } from "@opentelemetry/sdk-trace-base";
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
}

export interface Telemetry {
  readonly enabled: boolean;
  /** Waits until every ended span has been handed to the exporter. */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

/**
 * Starts the OpenTelemetry SDK for a service: OTLP export when enabled, the redaction guard in
 * front of every exporter, W3C trace context. When disabled nothing is started, but the W3C
 * propagator is still registered so trace context keeps flowing through events.
 */
export function startTelemetry(options: TelemetryOptions): Telemetry {
  const settings = telemetrySection.parse(options.settings ?? {});
  const enabled = settings.enabled || options.spanExporter !== undefined || options.metricReader !== undefined;
  if (!enabled) {
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    return { enabled: false, flush: async () => {}, shutdown: async () => {} };
  }
  const exporter = options.spanExporter ?? new OTLPTraceExporter({ url: `${settings.otlpEndpoint.replace(/\/$/, "")}/v1/traces` });
  const metricReader =
    options.metricReader ??
    (settings.enabled
      ? new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter({ url: `${settings.otlpEndpoint.replace(/\/$/, "")}/v1/metrics` }), exportIntervalMillis: settings.metricsIntervalMs })
      : undefined);
  const exportProcessor = options.spanExporter ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter);
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({ "service.name": options.serviceName, "service.namespace": "pwsync" }),
    spanProcessors: [new RedactingSpanProcessor(), exportProcessor],
    ...(metricReader ? { metricReaders: [metricReader] } : {}),
    textMapPropagator: new W3CTraceContextPropagator(),
    instrumentations: [],
  });
  sdk.start();
  return {
    enabled: true,
    flush: () => exportProcessor.forceFlush(),
    shutdown: async () => {
      await sdk.shutdown();
      metrics.disable();
    },
  };
}

/** The `telemetry:` section alone, for services whose own schema does not include it. */
export const telemetryConfigSchema = z.object({ telemetry: telemetrySection });
