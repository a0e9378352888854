import { GroupedRequests } from "@pwsync/grouping";
import type { GraphClient } from "./client.js";
import { batchKeyOf, envelopeFailure, isAbortedBeforeSending, parseSubResponseBody, stepOf, resultOf, type GraphCall, type Settled } from "./batch-mapping.js";
import { findUsers, setPassword, type EntraUser, type SetPasswordOptions, type UserLookupAttribute } from "./users.js";

/** Graph's documented limit of requests in one JSON batch. */
export const GRAPH_BATCH_LIMIT = 20;

export interface GraphBatcherOptions {
  /** Batches (or lone requests) in flight at once; a new request waits only when all are busy. */
  maxBatchesInFlight?: number;
}

/**
 * findUsers and setPassword, with requests asked at about the same time sent as one
 * `POST /$batch` (JSON batching, up to 20). Each caller gets exactly what the single request
 * would have given: its value, or the SDK's GraphError built from its own sub-response (status,
 * code, Retry-After), so classifyGraphError and every decision after it are unchanged.
 *
 * Why: each Graph request costs the process an SDK middleware pass, a token lookup and an HTTPS
 * request/response (TLS included); under load those were a large share of the resolver's and the
 * executor's CPU. Batching is not a way around Graph's limits: every request of a batch counts
 * against throttling on its own and can be answered 429 on its own.
 *
 * A lone request is not delayed: requests asked in the same turn of the event loop (handlers
 * released together) leave together once that turn ends; a request alone in its turn leaves as a
 * plain request while one of the slots is free. Only requests that arrive while every slot is busy
 * wait, and then leave together.
 */
export class GraphBatcher {
  private readonly grouped: GroupedRequests<GraphCall, Settled>;

  constructor(
    private readonly client: GraphClient,
    options: GraphBatcherOptions = {},
  ) {
    let unique = 0;
    this.grouped = new GroupedRequests<GraphCall, Settled>((round) => this.serve(round), {
      keyOf: (call) => batchKeyOf(call, () => unique++),
      maxPerRound: GRAPH_BATCH_LIMIT,
      maxRoundsInFlight: options.maxBatchesInFlight ?? 4,
      gatherOneTurn: true,
    });
  }

  async findUsers(by: UserLookupAttribute, value: string): Promise<EntraUser[]> {
    return (await this.ask({ kind: "findUsers", by, value })) as EntraUser[];
  }

  /** As setPassword: once `signal` has fired before the request leaves, it is never sent. */
  async setPassword(userId: string, password: string, options: SetPasswordOptions = { forceChangePasswordNextSignIn: false }): Promise<void> {
    await this.ask({
      kind: "setPassword",
      userId,
      password,
      forceChangePasswordNextSignIn: options.forceChangePasswordNextSignIn,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  private async ask(call: GraphCall): Promise<unknown> {
    const settled = await this.grouped.ask(call);
    if (!settled.ok) throw settled.error;
    return settled.value;
  }

  private async serve(round: GraphCall[]): Promise<Settled[]> {
    const answers: Settled[] = new Array(round.length);
    const live: number[] = [];
    round.forEach((call, i) => {
      if (isAbortedBeforeSending(call)) answers[i] = { ok: false, error: (call as { signal: AbortSignal }).signal.reason };
      else live.push(i);
    });
    if (live.length === 1) answers[live[0]!] = await this.single(round[live[0]!]!);
    else if (live.length > 1) {
      const results = await this.batch(live.map((i) => round[i]!));
      live.forEach((i, n) => (answers[i] = results[n]!));
    }
    return answers;
  }

  private async single(call: GraphCall): Promise<Settled> {
    try {
      if (call.kind === "findUsers") return { ok: true, value: await findUsers(this.client, call.by, call.value) };
      await setPassword(this.client, call.userId, call.password, {
        forceChangePasswordNextSignIn: call.forceChangePasswordNextSignIn,
        ...(call.signal ? { signal: call.signal } : {}),
      });
      return { ok: true, value: undefined };
    } catch (error) {
      return { ok: false, error };
    }
  }

  private async batch(calls: GraphCall[]): Promise<Settled[]> {
    const [{ BatchRequestContent, BatchResponseContent }, { GraphErrorHandler }] = await loadSdk();
    const base = this.client.graphBaseUrl;
    const steps = calls.map((call, i) => {
      const { path, init } = stepOf(call);
      return { id: String(i + 1), request: new Request(`${base}${path}`, init) };
    });
    const content = await new BatchRequestContent(steps).getContent();
    // The batch leaves only if no member's deadline has passed, and is given up at the first one,
    // so no write in it is sent, or waited for, past its own deadline.
    const signals = calls.flatMap((call) => (call.kind === "setPassword" && call.signal ? [call.signal] : []));
    const signal = signals.length > 0 ? AbortSignal.any(signals) : undefined;
    let body: unknown;
    try {
      const request = this.client.sdk.api("/$batch");
      if (signal) request.option("signal", signal);
      body = await request.post(content);
    } catch (err) {
      return calls.map((call) => ({ ok: false, error: envelopeFailure(call, err, signal?.aborted === true) }));
    }
    let responses: InstanceType<typeof BatchResponseContent>;
    try {
      responses = new BatchResponseContent(body as ConstructorParameters<typeof BatchResponseContent>[0]);
    } catch {
      // Sent, but the answer is unreadable: as with a lost answer, nothing is known about any request.
      return calls.map((call) => ({ ok: false, error: envelopeFailure(call, undefined, true) }));
    }
    return Promise.all(
      calls.map(async (call, i): Promise<Settled> => {
        const response = responses.getResponseById(String(i + 1));
        if (!response) return { ok: false, error: envelopeFailure(call, undefined, true) };
        const parsed = parseSubResponseBody(await response.text(), response.headers.get("content-type"));
        if (response.ok) return { ok: true, value: resultOf(call, parsed) };
        // The same construction the SDK applies to a failed single request (GraphRequest.send).
        return { ok: false, error: await GraphErrorHandler.getError(parsed as never, response.status, undefined, response) };
      }),
    );
  }
}

type SdkModules = [typeof import("@microsoft/microsoft-graph-client"), typeof import("@microsoft/microsoft-graph-client/lib/src/GraphErrorHandler.js")];
let sdkModules: Promise<SdkModules> | undefined;

/** Imported on first use, as in createGraphClient: the SDK is loaded only where Graph is called. */
function loadSdk(): Promise<SdkModules> {
  sdkModules ??= Promise.all([import("@microsoft/microsoft-graph-client"), import("@microsoft/microsoft-graph-client/lib/src/GraphErrorHandler.js")]);
  return sdkModules;
}
