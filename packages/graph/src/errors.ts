export type GraphErrorKind = "throttled" | "transient" | "complexity" | "notFound" | "forbidden" | "dirSynced" | "auth" | "other";

export interface ClassifiedGraphError {
  kind: GraphErrorKind;
  /** HTTP status, 0 when no HTTP answer was received (network failure). */
  httpStatus: number;
  /** Graph's error code, reduced to a token (letters, digits, `_.-`, at most 64). */
  code: string;
  /**
   * Graph's own words. Used to classify only: it can echo what was sent (a filter value, in
   * principle a property), so it is never copied into events, emails or logs.
   */
  message: string;
  retryAfterMs?: number;
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_SOCKET",
]);
const NETWORK_TEXT = new RegExp(`\\b(${[...NETWORK_CODES].join("|")}|network_error|fetch failed|socket hang up)\\b`, "i");
const AUTH_ERROR_NAMES = new Set(["AuthenticationError", "CredentialUnavailableError", "AuthenticationRequiredError"]);

/** Codes are identifiers (`Request_BadRequest`); anything else is not stored as one. */
export function safeCode(code: string): string {
  return /^[A-Za-z0-9_.-]{1,64}$/.test(code) ? code : "UnrecognisedCode";
}

/** Retry-After is either delta-seconds (possibly fractional) or an HTTP date. */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value === null || value === undefined || value.trim() === "") return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

interface ErrorLike {
  name?: unknown;
  message?: unknown;
  code?: unknown;
  statusCode?: unknown;
  body?: unknown;
  headers?: unknown;
  cause?: unknown;
}

function headerValue(headers: unknown, name: string): string | undefined {
  if (!headers || typeof headers !== "object") return undefined;
  if (typeof (headers as Headers).get === "function") return (headers as Headers).get(name) ?? undefined;
  const entry = Object.entries(headers as Record<string, unknown>).find(([key]) => key.toLowerCase() === name);
  return typeof entry?.[1] === "string" ? entry[1] : undefined;
}

function networkCode(err: ErrorLike, depth = 0): string | undefined {
  if (typeof err.code === "string" && NETWORK_CODES.has(err.code)) return err.code;
  if (depth < 3 && err.cause && typeof err.cause === "object") return networkCode(err.cause as ErrorLike, depth + 1);
  return undefined;
}

function classifyByStatus(status: number, code: string, message: string): Exclude<GraphErrorKind, "auth"> | "auth" {
  if (status === 429) return "throttled";
  if (status >= 500 || status === 408) return "transient";
  if (status === 401) return "auth";
  if (status === 403) return "forbidden";
  if (status === 404 || code === "Request_ResourceNotFound") return "notFound";
  if (status === 400) {
    if (/password complexity|PasswordPolicy|password.*(history|length|banned)/i.test(message)) return "complexity";
    if (/on-premises mastered Directory Sync|onPremisesSyncEnabled/i.test(message)) return "dirSynced";
  }
  return "other";
}

/**
 * Maps whatever a Graph call threw (the SDK's GraphError, an @azure/identity error from the
 * token request, or a bare network error) onto the decisions pwsync makes: retry later
 * (throttled/transient), fail the change for a known reason, or alert about credentials.
 */
export function classifyGraphError(err: unknown, now: number = Date.now()): ClassifiedGraphError {
  const e = (err && typeof err === "object" ? err : { message: String(err) }) as ErrorLike;
  const message = typeof e.message === "string" ? e.message : String(err);
  const name = typeof e.name === "string" ? e.name : "";
  const statusCode = typeof e.statusCode === "number" ? e.statusCode : undefined;
  const code = safeCode(typeof e.code === "string" ? e.code : name || "Error");
  const body = typeof e.body === "string" ? e.body : "";
  const retryAfterMs = parseRetryAfter(headerValue(e.headers, "retry-after"), now);

  const network = networkCode(e);
  if (network) return { kind: "transient", httpStatus: 0, code: network, message };

  // An @azure/identity failure: surfaced directly, or wrapped by the SDK as GraphError(-1, code=name).
  if (AUTH_ERROR_NAMES.has(name) || AUTH_ERROR_NAMES.has(code)) {
    const text = `${message} ${body}`;
    if (NETWORK_TEXT.test(text)) return { kind: "transient", httpStatus: 0, code, message };
    const tokenStatus = statusCode !== undefined && statusCode > 0 ? statusCode : 0;
    if (tokenStatus >= 500 || tokenStatus === 429) {
      return { kind: tokenStatus === 429 ? "throttled" : "transient", httpStatus: tokenStatus, code, message, retryAfterMs };
    }
    return { kind: "auth", httpStatus: tokenStatus, code, message };
  }

  // A JSON batch given up before Graph answered (another member's deadline fired): like a dropped connection.
  if (name === "GraphBatchAbandoned") return { kind: "transient", httpStatus: 0, code, message };

  if (statusCode === undefined || statusCode <= 0) {
    // No HTTP answer at all (the SDK reports -1): the request never completed.
    const match = NETWORK_TEXT.exec(`${message} ${body}`);
    if (match || name === "TypeError" || code === "TypeError") {
      const networkName = match?.[1] && NETWORK_CODES.has(match[1]) ? match[1] : code;
      return { kind: "transient", httpStatus: 0, code: networkName, message };
    }
    return { kind: "other", httpStatus: 0, code, message };
  }

  const kind = classifyByStatus(statusCode, code, message);
  const result: ClassifiedGraphError = { kind, httpStatus: statusCode, code, message };
  if (retryAfterMs !== undefined && (kind === "throttled" || kind === "transient")) result.retryAfterMs = retryAfterMs;
  return result;
}
