import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import { createLogger } from "@pwsync/log";
import { AccessTokens } from "./access-token.js";
import { resolveApp, type AppRegistration, type ResolvedApp } from "./apps.js";
import { handleTokenRequest, instanceDiscovery, openIdConfiguration, type EntraContext } from "./entra.js";
import { FaultPlan, faultRequestSchema } from "./faults.js";
import { parseBatch, SubResponse, subRequestHeaders, subRequestUrl } from "./batch.js";
import { authenticate, handleGraph, type GraphContext } from "./graph.js";
import { sendGraphError, sendJson, type Reply, type RequestIds } from "./graph-errors.js";
import { DEFAULT_SCRYPT_COST, loadState, StatePersister, verifyPassword, type SandboxCounters } from "./state.js";
import { DOCUMENTED_WRITE_BUDGET, WriteThrottle, type WriteBudget } from "./throttle.js";
import { loadUsersFile, type SandboxUser } from "./users.js";

export interface SandboxTenantOptions {
  /** TLS server certificate and key (PEM), e.g. the dev PKI's server.pem / server.key. */
  tls: { cert: string; key: string };
  tenantId: string;
  apps: AppRegistration[];
  /** Users inline, or a JSON file of users (an array, or `{ "users": [...] }`). */
  users?: SandboxUser[];
  usersFile?: string;
  /** Where hashes and counters persist between runs; in memory only when absent. */
  stateFile?: string;
  port?: number;
  host?: string;
  writeBudget?: WriteBudget;
  /** scrypt N for stored password hashes (power of two); lower only for benchmarks. */
  scryptCost?: number;
  logger?: Logger;
}

export interface SandboxStats {
  counters: SandboxCounters;
  faults: ReturnType<FaultPlan["describe"]>;
  users: number;
  writeBudget: WriteBudget;
  peakWritesInWindow: number;
  /** Graph requests received and not answered yet (a caller stuck behind injected latency shows here). */
  graphRequestsInFlight: number;
  /** `POST /v1.0/$batch` requests answered, and the requests they carried (each also counted as a Graph request). */
  batches: { requests: number; subRequests: number };
}

export interface SandboxTenantHandle {
  url: string;
  port: number;
  stats(): SandboxStats;
  /** Everything the sandbox holds in memory about passwords and counters, serialised (for leak checks). */
  dumpState(): string;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 1024 * 1024;

class BodyTooLarge extends Error {}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new BodyTooLarge();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function parseJsonObject(body: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(body.toString("utf8"));
    return value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export async function startSandboxTenant(options: SandboxTenantOptions): Promise<SandboxTenantHandle> {
  const log = options.logger ?? createLogger({ service: "sandbox-tenant" });
  const users = options.users ?? (options.usersFile ? await loadUsersFile(options.usersFile) : []);
  const state = await loadState(options.stateFile);
  const persister = new StatePersister(options.stateFile);
  const persist = () => persister.save(state);
  const writeBudget = options.writeBudget ?? DOCUMENTED_WRITE_BUDGET;
  const throttle = new WriteThrottle(writeBudget);
  const faults = new FaultPlan();
  let graphRequestsInFlight = 0;
  const batches = { requests: 0, subRequests: 0 };
  const tokens = new AccessTokens(Buffer.from(state.tokenKey, "base64"), options.tenantId);
  const apps = new Map<string, ResolvedApp>(options.apps.map((app) => [app.clientId.toLowerCase(), resolveApp(app)]));

  const entra: EntraContext = {
    tenantId: options.tenantId,
    apps,
    tokens,
    log,
    onTokenIssued: () => {
      state.counters.tokensIssued++;
      void persist();
    },
    onTokenRefused: () => {
      state.counters.tokenFailures++;
      void persist();
    },
  };
  const graph: GraphContext = { users, state, tokens, throttle, log, persist, scryptCost: options.scryptCost ?? DEFAULT_SCRYPT_COST };

  async function applyGraphFaults(res: Reply, ids: RequestIds, isWrite: boolean): Promise<boolean> {
    const latency = faults.nextLatencyMs();
    if (latency > 0) await sleep(latency);
    const failure = faults.nextFailure(isWrite);
    if (!failure) return false;
    state.counters.injectedFailures++;
    if (failure.status === 429) state.counters.throttled++;
    void persist();
    const headers: Record<string, string> = failure.retryAfterSeconds !== undefined ? { "retry-after": String(failure.retryAfterSeconds) } : {};
    if (failure.status === 429) sendGraphError(res, ids, 429, "TooManyRequests", "Too many requests. Please retry again later.", headers);
    else if (failure.status === 503)
      sendGraphError(res, ids, 503, "serviceNotAvailable", "The service is temporarily unavailable. Please try again later.", headers);
    else sendGraphError(res, ids, 500, "generalException", "An unspecified error has occurred.", headers);
    return true;
  }

  /**
   * One Graph request, alone or from a batch: faults, latency and the write budget apply to each
   * the same way, as Graph counts every request of a batch against its limits on its own.
   */
  async function graphRequest(request: Parameters<typeof handleGraph>[1]): Promise<void> {
    graphRequestsInFlight++;
    try {
      if (await applyGraphFaults(request.res, request.ids, request.method === "PATCH")) return;
      return await handleGraph(graph, request);
    } finally {
      graphRequestsInFlight--;
    }
  }

  /** `POST /v1.0/$batch` (JSON batching): every request answered with its own status, headers and body. */
  async function handleBatch(req: IncomingMessage, res: ServerResponse, ids: RequestIds, body: Buffer, origin: string): Promise<void> {
    if (!authenticate(graph, { headers: req.headers, res, ids })) return;
    const parsed = parseBatch(parseJsonObject(body));
    if (!parsed.ok) return sendGraphError(res, ids, 400, parsed.code, parsed.message);
    batches.requests++;
    batches.subRequests += parsed.requests.length;
    // Graph runs the requests of a batch without dependsOn in no particular order, here all at once.
    const responses = await Promise.all(
      parsed.requests.map(async (sub) => {
        const reply = new SubResponse();
        const clientRequestId = sub.headers["client-request-id"] ?? randomUUID();
        await graphRequest({
          method: sub.method,
          headers: subRequestHeaders(req.headers, sub),
          res: reply,
          url: subRequestUrl(origin, sub.url),
          ids: { requestId: randomUUID(), clientRequestId },
          body: sub.body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(sub.body)),
          origin,
        });
        return reply.toJson(sub.id);
      }),
    );
    sendJson(res, 200, { responses }, { "request-id": ids.requestId, "client-request-id": ids.clientRequestId });
  }

  async function handleSandbox(req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer): Promise<void> {
    const route = `${req.method} ${url.pathname}`;
    if (route === "GET /sandbox/stats") {
      return sendJson(res, 200, { sandbox: true, ...handle.stats() });
    }
    if (route === "GET /sandbox/state") {
      return sendJson(res, 200, JSON.parse(handle.dumpState()));
    }
    if (route === "POST /sandbox/faults") {
      const parsed = faultRequestSchema.safeParse(parseJsonObject(body) ?? {});
      if (!parsed.success) return sendJson(res, 400, { error: "invalid_fault_request", issues: parsed.error.issues });
      faults.apply(parsed.data);
      if (parsed.data.reset) throttle.reset();
      log.info({ event: "faults_configured", faults: faults.describe() }, "faults configured");
      return sendJson(res, 200, { faults: faults.describe() });
    }
    if (route === "POST /sandbox/signin") {
      const credentials = parseJsonObject(body);
      const upn = credentials?.userPrincipalName;
      const password = credentials?.password;
      if (typeof upn !== "string" || typeof password !== "string") {
        return sendJson(res, 400, { error: "invalid_request", error_description: "userPrincipalName and password are required" });
      }
      const user = users.find((candidate) => candidate.userPrincipalName.toLowerCase() === upn.toLowerCase());
      const hash = user ? state.passwordHashes[user.id] : undefined;
      const ok = user?.accountEnabled && hash !== undefined && (await verifyPassword(password, hash));
      log.info({ event: "signin", userPrincipalName: upn, ok }, "sandbox sign-in check");
      if (!ok)
        return sendJson(res, 401, {
          error: "invalid_grant",
          error_description: "AADSTS50126: Error validating credentials due to invalid username or password.",
        });
      return sendJson(res, 200, { ok: true, id: user.id });
    }
    return sendJson(res, 404, { error: "not_found" });
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const host = req.headers.host ?? "localhost";
    const origin = `https://${host}`;
    const url = new URL(req.url ?? "/", origin);
    const ids: RequestIds = {
      requestId: randomUUID(),
      clientRequestId: typeof req.headers["client-request-id"] === "string" ? req.headers["client-request-id"] : randomUUID(),
    };
    const body = await readBody(req);
    const segments = url.pathname.split("/").filter(Boolean);

    if (segments[0] === "v1.0" && segments[1] === "$batch" && segments.length === 2) {
      if (req.method !== "POST")
        return sendGraphError(res, ids, 405, "Request_BadRequest", `The HTTP method '${req.method ?? ""}' is not allowed for this resource.`);
      return handleBatch(req, res, ids, body, origin);
    }
    if (segments[0] === "v1.0") {
      const method = req.method ?? "GET";
      return graphRequest({ method, headers: req.headers, res, url, ids, body, origin });
    }
    if (segments[0] === "sandbox") return handleSandbox(req, res, url, body);

    const tenant = segments[0] ?? "";
    const rest = segments.slice(1).join("/");
    if (req.method === "POST" && rest === "oauth2/v2.0/token") {
      const form = new URLSearchParams(body.toString("utf8"));
      return handleTokenRequest(entra, res, tenant, form, `${origin}${url.pathname}`, `${origin}/${tenant}/v2.0`);
    }
    if (req.method === "GET" && rest === "v2.0/.well-known/openid-configuration") {
      return sendJson(res, 200, openIdConfiguration(origin, tenant));
    }
    if (req.method === "GET" && rest === "discovery/v2.0/keys") return sendJson(res, 200, { keys: [] });
    if (req.method === "GET" && rest === "discovery/instance") {
      return sendJson(res, 200, instanceDiscovery(origin, host, url.searchParams.get("authorization_endpoint")));
    }
    sendGraphError(res, ids, 404, "NotFound", `The sandbox tenant has no route for ${req.method ?? ""} ${url.pathname}.`);
  }

  const server: Server = createServer({ cert: options.tls.cert, key: options.tls.key }, (req, res) => {
    const started = process.hrtime.bigint();
    res.on("finish", () => {
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      // Path only: query strings carry user identifiers, bodies may carry passwords; neither is logged.
      log.debug({ method: req.method, path: (req.url ?? "").split("?")[0], status: res.statusCode, durationMs }, "request");
    });
    route(req, res).catch((err: unknown) => {
      if (res.headersSent) return res.destroy();
      if (err instanceof BodyTooLarge) return sendJson(res, 413, { error: "payload_too_large" });
      log.error({ err }, "sandbox request failed");
      sendJson(res, 500, { error: { code: "generalException", message: "Sandbox internal error." } });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const hostForUrl = (options.host ?? "127.0.0.1").includes(":") ? `[${options.host}]` : (options.host ?? "127.0.0.1");

  const handle: SandboxTenantHandle = {
    url: `https://${hostForUrl}:${port}`,
    port,
    stats: () => ({
      counters: { ...state.counters },
      faults: faults.describe(),
      users: users.length,
      writeBudget,
      peakWritesInWindow: throttle.peakWritesInWindow,
      graphRequestsInFlight,
      batches: { ...batches },
    }),
    dumpState: () => JSON.stringify({ passwordHashes: state.passwordHashes, counters: state.counters }),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await persist();
    },
  };
  return handle;
}
