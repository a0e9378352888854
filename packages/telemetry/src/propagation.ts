import { context, propagation, trace, SpanKind, SpanStatusCode, type Attributes, type Context, type Span } from "@opentelemetry/api";
// The propagator's own module, not the package's entry point: every service loads it at start,
// and the entry point loads all of @opentelemetry/core (1 MB more heap, telemetry off or on).
import { W3CTraceContextPropagator } from "@opentelemetry/core/build/src/trace/W3CTraceContextPropagator.js";
import type * as grpc from "@grpc/grpc-js";
import { pwsyncMetrics } from "./metrics.js";
import { redactAttributes } from "./redaction.js";

// Trace context travels in three carriers: an event's metadata (traceparent/tracestate, stored
// in Postgres with every event), gRPC metadata (agent → ingest), and the active context. The
// W3C propagator is used directly, so this works whether or not the SDK is running: with
// telemetry off the trace id still flows from event to event.

const w3c = new W3CTraceContextPropagator();
const TRACER = "pwsync";

export interface TraceCarrier {
  traceparent?: string;
  tracestate?: string;
}

const getter = {
  keys: (carrier: Record<string, unknown>) => Object.keys(carrier),
  get: (carrier: Record<string, unknown>, key: string) => (typeof carrier[key] === "string" ? (carrier[key] as string) : undefined),
};
const setter = { set: (carrier: Record<string, unknown>, key: string, value: string) => void (carrier[key] = value) };

/** The context an event's metadata carries (the change's trace), or the root context. */
export function contextFromMetadata(metadata: TraceCarrier | undefined, base: Context = context.active()): Context {
  return metadata?.traceparent ? w3c.extract(base, metadata as Record<string, unknown>, getter) : base;
}

/** traceparent/tracestate of a span (or the active context), for a new event's metadata. */
export function traceMetadata(spanOrContext?: Span | Context): TraceCarrier {
  const ctx = spanOrContext === undefined ? context.active() : "spanContext" in spanOrContext ? trace.setSpan(context.active(), spanOrContext) : spanOrContext;
  const carrier: Record<string, unknown> = {};
  w3c.inject(ctx, carrier, setter);
  return carrier as TraceCarrier;
}

/**
 * Handles one event inside a span that continues the change's trace (the event's traceparent
 * is the parent). Exceptions are recorded (message only) and rethrown; the span always ends.
 * Attributes pass the redaction guard.
 */
export async function withEventSpan<T>(name: string, metadata: TraceCarrier | undefined, attributes: Attributes, fn: (span: Span) => Promise<T>): Promise<T> {
  const parent = contextFromMetadata(metadata);
  const span = trace.getTracer(TRACER).startSpan(name, { kind: SpanKind.CONSUMER, attributes: redactAttributes(attributes) }, parent);
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (err) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
    throw err;
  } finally {
    span.end();
  }
}

/** Sets attributes through the redaction guard. */
export function setSafeAttributes(span: Span, attributes: Attributes): void {
  span.setAttributes(redactAttributes(attributes));
}

/** Writes the active (or given) context's traceparent into outgoing gRPC metadata. */
export function injectGrpcMetadata(metadata: grpc.Metadata, ctx: Context = context.active()): grpc.Metadata {
  const carrier: Record<string, unknown> = {};
  w3c.inject(ctx, carrier, setter);
  for (const [key, value] of Object.entries(carrier)) metadata.set(key, value as string);
  return metadata;
}

/** The trace context of an incoming gRPC call's metadata. */
export function contextFromGrpcMetadata(metadata: grpc.Metadata, base: Context = context.active()): Context {
  const carrier: Record<string, unknown> = {};
  for (const key of ["traceparent", "tracestate"]) {
    const value = metadata.get(key)[0];
    if (typeof value === "string") carrier[key] = value;
  }
  return contextFromMetadata(carrier as TraceCarrier, base);
}

export { propagation };

interface TracedEvent {
  type: string;
  streamId: string;
  globalPosition: bigint;
  metadata: TraceCarrier & Record<string, unknown>;
}

/**
 * Wraps a consumer's event handler so each event is handled in a span continuing the change's
 * trace, and the handler sees metadata whose traceparent is that span: events it appends with
 * `{...event.metadata}` become the span's children. With telemetry off the traceparent passes
 * through unchanged.
 */
export function tracedHandler<E extends TracedEvent, R, A extends unknown[]>(
  service: string,
  handle: (event: E, ...rest: A) => Promise<R>,
): (event: E, ...rest: A) => Promise<R> {
  return (event, ...rest) =>
    withEventSpan(
      `${service} ${event.type}`,
      event.metadata,
      { "pwsync.event_type": event.type, "pwsync.stream_id": event.streamId, "pwsync.global_position": String(event.globalPosition) },
      (span) => handle({ ...event, metadata: { ...event.metadata, ...traceMetadata(span) } }, ...rest),
    );
}

/**
 * Records a change's outcome on the span handling it (the seed's Total / Work / Wait split as
 * attributes) and counts it in pwsync.changes. Safe with telemetry off.
 */
export function recordOutcome(outcome: string, timing?: { totalMs?: number; workMs?: number; waitMs?: number; attempts?: number }): void {
  const span = trace.getActiveSpan();
  span?.setAttributes(
    redactAttributes({
      "pwsync.outcome": outcome,
      ...(timing?.totalMs !== undefined
        ? { "pwsync.total_ms": timing.totalMs, "pwsync.work_ms": timing.workMs ?? 0, "pwsync.wait_ms": timing.waitMs ?? 0 }
        : {}),
      ...(timing?.attempts !== undefined ? { "pwsync.attempts": timing.attempts } : {}),
    }),
  );
  pwsyncMetrics().changes.add(1, { outcome });
}

/** One Graph request: latency histogram, 429 counter, and an event on the active span. */
export function recordGraphAttempt(operation: string, ms: number, httpStatus: number, kind = "ok"): void {
  const m = pwsyncMetrics();
  m.graphLatency.record(ms, { operation, status: String(httpStatus) });
  if (httpStatus === 429) m.graphThrottled.add(1, { operation });
  trace.getActiveSpan()?.addEvent("graph.attempt", {
    "graph.operation": operation,
    "http.response.status_code": httpStatus,
    "pwsync.graph.kind": kind,
    "pwsync.duration_ms": Math.round(ms),
  });
}

/** An alert email's fate (sent / throttled / failed) by recipient role. */
export function recordAlert(result: string, role: string): void {
  pwsyncMetrics().alerts.add(1, { result, role });
}
