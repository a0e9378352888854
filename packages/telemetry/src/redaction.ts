import type { Context } from "@opentelemetry/api";
import type { ReadableSpan, Span, SpanProcessor } from "@opentelemetry/sdk-trace-base";

/**
 * Attribute names that may never carry their value into a span, wherever they are set (our code,
 * an instrumentation library, a future contributor). The code sets none of them on purpose;
 * this is the second line of defence, like the log redaction in @pwsync/log.
 */
const SECRET_KEY = /pass(word|wd)?|secret|sealed|envelope|private.?key|authorization|cookie|token|credential|plaintext/i;
/** Values that look like a bearer token / JWT or a PEM block, whatever their key. */
const SECRET_VALUE = /(eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})|(-----BEGIN [A-Z ]+-----)|(Bearer\s+\S{8,})/;

export const REDACTED = "[REDACTED]";

export function isSecretAttribute(key: string, value: unknown): boolean {
  if (SECRET_KEY.test(key)) return true;
  const values = Array.isArray(value) ? value : [value];
  return values.some((v) => typeof v === "string" && SECRET_VALUE.test(v));
}

/** A copy of `attributes` safe to put on a span. */
export function redactAttributes<T extends Record<string, unknown>>(attributes: T): T {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(attributes)) out[key] = isSecretAttribute(key, value) ? REDACTED : value;
  return out as T;
}

function scrub(target: Record<string, unknown> | undefined): void {
  if (!target) return;
  for (const [key, value] of Object.entries(target)) if (isSecretAttribute(key, value)) target[key] = REDACTED;
}

/**
 * Runs before the export processors: rewrites secret-looking attributes, event attributes and
 * exception messages while the span is still mutable (onEnding), so no exporter ever sees them.
 */
export class RedactingSpanProcessor implements SpanProcessor {
  onStart(span: Span, _parentContext: Context): void {
    scrub(span.attributes as Record<string, unknown>);
  }
  onEnding(span: Span): void {
    scrub(span.attributes as Record<string, unknown>);
    for (const event of span.events) scrub(event.attributes as Record<string, unknown> | undefined);
    if (span.status.message && SECRET_VALUE.test(span.status.message)) span.status.message = REDACTED;
  }
  onEnd(_span: ReadableSpan): void {}
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}
