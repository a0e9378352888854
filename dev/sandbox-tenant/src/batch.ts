import type { IncomingHttpHeaders } from "node:http";
import type { Reply } from "./graph-errors.js";

/** Graph's documented limit of requests in one JSON batch. */
export const MAX_BATCH_REQUESTS = 20;

const METHODS = new Set(["GET", "POST", "PATCH", "PUT", "DELETE"]);

export interface BatchSubRequest {
  id: string;
  method: string;
  /** Relative to the version, as Graph takes it: `/users?$filter=…` or `users/{id}`. */
  url: string;
  headers: Record<string, string>;
  body?: unknown;
}

export type BatchParse = { ok: true; requests: BatchSubRequest[] } | { ok: false; code: string; message: string };

const refuse = (code: string, message: string): BatchParse => ({ ok: false, code, message });

/**
 * Reads a `POST /$batch` body the way Microsoft Graph's JSON batching documents it: `requests`
 * holds at most 20 requests, each with a unique `id`, a `method` and a `url` relative to the
 * version; a request with a `body` must say its `Content-Type`. `dependsOn` (sequencing) is not
 * implemented by the sandbox and is refused rather than ignored, so no caller relies on it unseen.
 */
export function parseBatch(body: unknown): BatchParse {
  const requests = (body as { requests?: unknown } | null)?.requests;
  if (!body || typeof body !== "object" || !Array.isArray(requests)) return refuse("BadRequest", "Invalid batch payload format.");
  if (requests.length === 0) return refuse("BadRequest", "Invalid batch payload format.");
  if (requests.length > MAX_BATCH_REQUESTS) {
    return refuse("BadRequest", `Maximum number of requests in a batch exceeded. Max requests allowed is ${MAX_BATCH_REQUESTS}.`);
  }
  const ids = new Set<string>();
  const parsed: BatchSubRequest[] = [];
  for (const raw of requests as unknown[]) {
    const r = (raw ?? {}) as { id?: unknown; method?: unknown; url?: unknown; headers?: unknown; body?: unknown; dependsOn?: unknown };
    if (typeof r.id !== "string" || r.id === "") return refuse("BadRequest", "Every request in a batch needs an id.");
    if (ids.has(r.id)) return refuse("BadRequest", `Request id '${r.id}' appears more than once in the batch.`);
    ids.add(r.id);
    const method = typeof r.method === "string" ? r.method.toUpperCase() : "";
    if (!METHODS.has(method)) return refuse("BadRequest", `Request '${r.id}' has an invalid method.`);
    if (typeof r.url !== "string" || r.url === "" || /^[a-z]+:\/\//i.test(r.url) || /(^|\/)\$batch\b/i.test(r.url)) {
      return refuse("BadRequest", `Request '${r.id}' needs a URL relative to the version.`);
    }
    if (r.dependsOn !== undefined) return refuse("BadRequest", "The sandbox tenant does not implement dependsOn in batches.");
    const headers: Record<string, string> = {};
    if (r.headers !== undefined) {
      if (!r.headers || typeof r.headers !== "object") return refuse("BadRequest", `Request '${r.id}' has invalid headers.`);
      for (const [name, value] of Object.entries(r.headers)) if (typeof value === "string") headers[name.toLowerCase()] = value;
    }
    if (r.body !== undefined && headers["content-type"] === undefined) {
      return refuse("BadRequest", `Request '${r.id}' has a body but no Content-Type header.`);
    }
    parsed.push({ id: r.id, method, url: r.url, headers, ...(r.body !== undefined ? { body: r.body } : {}) });
  }
  return { ok: true, requests: parsed };
}

/** The URL a sub-request would have had on its own, resolved against `/v1.0/`. */
export function subRequestUrl(origin: string, url: string): URL {
  return new URL(`/v1.0/${url.replace(/^\/+/, "")}`, origin);
}

/** The sub-request's headers as the single request would carry them: the batch's Authorization unless it has its own. */
export function subRequestHeaders(batch: IncomingHttpHeaders, sub: BatchSubRequest): IncomingHttpHeaders {
  return { authorization: batch.authorization, ...sub.headers };
}

export interface BatchSubResponse {
  id: string;
  status: number;
  headers: Record<string, string>;
  body?: unknown;
}

// Graph's sub-response headers come Title-Cased ("Content-Type", "Retry-After"); the SDK's
// BatchResponseContent looks for "Content-Type" by that exact name to know the body is JSON.
const titleCase = (name: string) => name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());

/** Collects what a request handler writes into one entry of the batch's `responses`. */
export class SubResponse implements Reply {
  private status = 200;
  private headers: Record<string, string> = {};
  private payload: string | undefined;

  writeHead(status: number, headers: Record<string, string | number> = {}): this {
    this.status = status;
    for (const [name, value] of Object.entries(headers)) {
      if (name.toLowerCase() !== "content-length") this.headers[titleCase(name.toLowerCase())] = String(value);
    }
    return this;
  }

  end(payload?: string): this {
    this.payload = payload;
    return this;
  }

  toJson(id: string): BatchSubResponse {
    const isJson = /^application\/json/i.test(this.headers["Content-Type"] ?? "");
    const body = this.payload === undefined || this.payload === "" ? undefined : isJson ? JSON.parse(this.payload) : this.payload;
    return { id, status: this.status, headers: this.headers, ...(body !== undefined ? { body } : {}) };
  }
}
