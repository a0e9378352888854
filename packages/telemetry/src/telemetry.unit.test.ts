import * as grpc from "@grpc/grpc-js";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { contextFromGrpcMetadata, injectGrpcMetadata, setSafeAttributes, startTelemetry, traceMetadata, withEventSpan, type Telemetry } from "./index.js";

// Canary: a password-like value set every way a careless change could set it must not reach
// an exported span. And one change is one trace: event metadata → span → next event metadata.

const CANARY = `Tele-Canary-${randomUUID()}`;
const exporter = new InMemorySpanExporter();
let telemetry: Telemetry;

beforeAll(async () => {
  telemetry = await startTelemetry({ serviceName: "telemetry-test", spanExporter: exporter });
});
afterAll(async () => {
  await telemetry.shutdown();
});

const exported = (spans: ReadableSpan[]) =>
  JSON.stringify(spans.map((s) => ({ name: s.name, attributes: s.attributes, events: s.events, status: s.status, links: s.links })));

describe("telemetry", () => {
  it("continues the change's trace from an event's traceparent and hands it on to the next event", async () => {
    const traceId = randomBytes(16).toString("hex");
    const parentSpanId = randomBytes(8).toString("hex");
    const metadata = { traceparent: `00-${traceId}-${parentSpanId}-01`, actor: "ingest" };
    const next = await withEventSpan("resolver.resolve", metadata, { "pwsync.change_id": "c1" }, async (span) => traceMetadata(span));
    await telemetry.flush();
    const [span] = exporter.getFinishedSpans().filter((s) => s.name === "resolver.resolve");
    expect(span!.spanContext().traceId).toBe(traceId);
    expect(span!.parentSpanContext?.spanId).toBe(parentSpanId);
    expect(next.traceparent).toBe(`00-${traceId}-${span!.spanContext().spanId}-01`);
  });

  it("no password, token or key reaches an exported span, however it was set", async () => {
    exporter.reset();
    const jwt = `eyJ${Buffer.from(CANARY).toString("base64url")}.${Buffer.from(CANARY).toString("base64url")}`;
    await expect(
      withEventSpan(
        "executor.set_password",
        { traceparent: `00-${randomBytes(16).toString("hex")}-${randomBytes(8).toString("hex")}-01` },
        { password: CANARY, "user.secret": CANARY, "pwsync.attempt": 1 },
        async (span) => {
          span.setAttribute("newPassword", CANARY);
          span.setAttributes({ "graph.request.body.passwordProfile": CANARY, "http.request.header.authorization": `Bearer ${CANARY}` });
          span.addEvent("graph.attempt", { authorization: `Bearer ${CANARY}`, "pwsync.sealed_envelope": CANARY, "http.status": 400 });
          setSafeAttributes(span, { "pwsync.total_ms": 120, "pwsync.work_ms": 80, "pwsync.wait_ms": 40, "pwsync.token": jwt });
          span.setAttribute("graph.note", jwt);
          throw new Error(`Graph refused ${jwt}`);
        },
      ),
    ).rejects.toThrow();
    await telemetry.flush();
    const spans = exporter.getFinishedSpans();
    expect(spans).toHaveLength(1);
    const text = exported(spans);
    expect(text).not.toContain(CANARY);
    expect(text).not.toContain(Buffer.from(CANARY).toString("base64url"));
    // The benign attributes survive: the Total/Work/Wait split is on the span.
    expect(spans[0]!.attributes).toMatchObject({
      "pwsync.total_ms": 120,
      "pwsync.work_ms": 80,
      "pwsync.wait_ms": 40,
      "pwsync.attempt": 1,
      password: "[REDACTED]",
    });
  });

  it("trace context rides gRPC metadata (agent → ingest)", () => {
    const traceId = randomBytes(16).toString("hex");
    expect(injectGrpcMetadata(new grpc.Metadata(), contextFromGrpcMetadata(new grpc.Metadata())).get("traceparent")).toEqual([]);
    const incoming = new grpc.Metadata();
    incoming.set("traceparent", `00-${traceId}-${randomBytes(8).toString("hex")}-01`);
    const carried = injectGrpcMetadata(new grpc.Metadata(), contextFromGrpcMetadata(incoming));
    expect(String(carried.get("traceparent")[0])).toContain(traceId);
  });
});
