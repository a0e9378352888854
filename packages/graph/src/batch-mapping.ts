import { lookupPath, passwordPatch, toEntraUsers, type UserLookupAttribute } from "./users.js";

/** One Graph request a caller asked the batcher for. */
export type GraphCall =
  | { kind: "findUsers"; by: UserLookupAttribute; value: string }
  | { kind: "setPassword"; userId: string; password: string; forceChangePasswordNextSignIn: boolean; signal?: AbortSignal };

/** What a caller gets: the value a single request would have returned, or the error it would have thrown. */
export type Settled = { ok: true; value: unknown } | { ok: false; error: unknown };

/**
 * A batch that was given up before its answer came (another member's deadline fired, so the
 * whole request was aborted): like a request whose connection dropped, nothing is known about
 * whether Graph applied it. classifyGraphError reports it as transient with no HTTP answer.
 */
export class GraphBatchAbandoned extends Error {
  override name = "GraphBatchAbandoned";
  readonly code = "BatchAbandoned";
}

/** Given up before sending: its signal already fired, so it must not leave (fencing's "no write after its deadline"). */
export function isAbortedBeforeSending(call: GraphCall): boolean {
  return call.kind === "setPassword" && call.signal?.aborted === true;
}

/** Calls of the same user never share a batch: Graph runs a batch's requests in no set order. */
export function batchKeyOf(call: GraphCall, unique: () => number): string {
  return call.kind === "setPassword" ? `user:${call.userId.toLowerCase()}` : `lookup:${unique()}`;
}

/** A batch step's relative URL, method, headers and body, as the single request would send them. */
export function stepOf(call: GraphCall): { path: string; init: RequestInit } {
  if (call.kind === "findUsers") return { path: lookupPath(call.by, call.value), init: { method: "GET" } };
  return {
    path: `/users/${encodeURIComponent(call.userId)}`,
    init: {
      method: "PATCH",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(passwordPatch(call.password, call.forceChangePasswordNextSignIn)),
    },
  };
}

/** A successful sub-response's body as the single call's result. */
export function resultOf(call: GraphCall, body: unknown): unknown {
  return call.kind === "findUsers" ? toEntraUsers(body) : undefined;
}

/** The error a batch member gets when the batch request itself failed: its own signal's, or "abandoned" if another's aborted it. */
export function envelopeFailure(call: GraphCall, batchError: unknown, batchAborted: boolean): unknown {
  if (call.kind === "setPassword" && call.signal?.aborted) return call.signal.reason;
  return batchAborted ? new GraphBatchAbandoned("the batch carrying this request was aborted before Graph answered") : batchError;
}

/** A sub-response body as the SDK's response handler would read it: JSON when it says so, else text. */
export function parseSubResponseBody(text: string, contentType: string | null): unknown {
  if (text === "") return undefined;
  if (/^application\/json/i.test(contentType ?? "")) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}
