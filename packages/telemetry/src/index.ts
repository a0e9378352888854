export { startTelemetry, telemetryConfigSchema, telemetrySection, type Telemetry, type TelemetryOptions, type TelemetrySettings } from "./setup.js";
export {
  contextFromGrpcMetadata,
  contextFromMetadata,
  injectGrpcMetadata,
  recordAlert,
  recordGraphAttempt,
  recordOutcome,
  setSafeAttributes,
  tracedHandler,
  traceMetadata,
  withEventSpan,
  type TraceCarrier,
} from "./propagation.js";
export { isSecretAttribute, redactAttributes, RedactingSpanProcessor, REDACTED } from "./redaction.js";
export { observeBacklog, pwsyncMetrics, type PwsyncMetrics } from "./metrics.js";
