import type { IncomingHttpHeaders } from "node:http";
import type { Logger } from "pino";
import type { AccessTokenClaims, AccessTokens } from "./access-token.js";
import { meetsEntraComplexity } from "./complexity.js";
import { GraphMessages, sendGraphError, sendJson, type Reply, type RequestIds } from "./graph-errors.js";
import { ODataFilterError, parseEqualityFilter, parseSelect } from "./odata.js";
import { hashPassword, type SandboxState } from "./state.js";
import type { WriteThrottle } from "./throttle.js";
import { isFilterable, toGraphUser, UserIndex, type SandboxUser } from "./users.js";

const READ_ROLES = ["User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"];
const PASSWORD_WRITE_ROLES = ["User.ReadWrite.All", "User-PasswordProfile.ReadWrite.All", "Directory.ReadWrite.All"];

export interface GraphContext {
  users: SandboxUser[];
  state: SandboxState;
  tokens: AccessTokens;
  throttle: WriteThrottle;
  log: Logger;
  persist(): Promise<void>;
  scryptCost: number;
}

/** One Graph request: an HTTP request of its own, or one of a `$batch`'s (then `res` collects its answer). */
export interface GraphRequest {
  method: string;
  headers: IncomingHttpHeaders;
  res: Reply;
  url: URL;
  ids: RequestIds;
  body: Buffer;
  origin: string;
}

export function authenticate(ctx: GraphContext, { headers, res, ids }: Pick<GraphRequest, "headers" | "res" | "ids">): AccessTokenClaims | undefined {
  const header = headers.authorization ?? "";
  const token = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
  if (!token) {
    sendGraphError(res, ids, 401, "InvalidAuthenticationToken", GraphMessages.tokenMissing);
    return undefined;
  }
  const verdict = ctx.tokens.verify(token, Math.floor(Date.now() / 1000));
  if (!verdict.ok) {
    const message = verdict.reason === "expired" ? GraphMessages.tokenExpired : GraphMessages.tokenInvalid;
    sendGraphError(res, ids, 401, "InvalidAuthenticationToken", message);
    return undefined;
  }
  return verdict.claims;
}

const hasAnyRole = (claims: AccessTokenClaims, roles: string[]) => claims.roles.some((role) => roles.includes(role));

const indexes = new WeakMap<readonly SandboxUser[], UserIndex>();
function indexOf(users: readonly SandboxUser[]): UserIndex {
  let index = indexes.get(users);
  if (!index) indexes.set(users, (index = new UserIndex(users)));
  return index;
}

function findUser(ctx: GraphContext, idOrUpn: string): SandboxUser | undefined {
  return indexOf(ctx.users).findByIdOrUpn(idOrUpn);
}

function contextUrl(origin: string, select: string[] | undefined, entity: boolean): string {
  const selection = select ? `(${select.join(",")})` : "";
  return `${origin}/v1.0/$metadata#users${selection}${entity ? "/$entity" : ""}`;
}

/** Routes /v1.0/users… requests. Returns false when the path is not a users route. */
export async function handleGraph(ctx: GraphContext, request: GraphRequest): Promise<void> {
  const { method, res, url, ids, origin } = request;
  const claims = authenticate(ctx, request);
  if (!claims) return;

  const segments = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  if (segments[1]?.toLowerCase() !== "users" || segments.length > 3) {
    return sendGraphError(res, ids, 400, "BadRequest", `Resource not found for the segment '${segments[1] ?? ""}'.`);
  }
  const userKey = segments[2];

  if (method === "GET") {
    if (!hasAnyRole(claims, READ_ROLES)) return sendGraphError(res, ids, 403, "Authorization_RequestDenied", GraphMessages.forbidden);
    const select = parseSelect(url.searchParams.get("$select"));
    if (userKey === undefined) return listUsers(ctx, request, select);
    const user = findUser(ctx, userKey);
    if (!user) return sendGraphError(res, ids, 404, "Request_ResourceNotFound", GraphMessages.notFound(userKey));
    return sendJson(res, 200, { "@odata.context": contextUrl(origin, select, true), ...toGraphUser(user, select) });
  }

  if (method === "PATCH" && userKey !== undefined) return patchUser(ctx, request, claims, userKey);

  return sendGraphError(res, ids, 405, "Request_BadRequest", `The HTTP method '${method}' is not allowed for this resource.`);
}

function listUsers(ctx: GraphContext, { res, url, ids, origin }: GraphRequest, select: string[] | undefined): void {
  const filter = url.searchParams.get("$filter");
  let users = ctx.users;
  if (filter !== null) {
    try {
      const { property, value } = parseEqualityFilter(filter);
      if (!isFilterable(property)) {
        return sendGraphError(
          res,
          ids,
          400,
          "Request_UnsupportedQuery",
          `Unsupported or invalid query filter clause specified for property '${property}' of resource 'User'.`,
        );
      }
      users = indexOf(ctx.users).find(property, value);
    } catch (err) {
      if (err instanceof ODataFilterError) return sendGraphError(res, ids, 400, "BadRequest", err.message);
      throw err;
    }
  }
  const top = Number(url.searchParams.get("$top") ?? "100");
  sendJson(res, 200, {
    "@odata.context": contextUrl(origin, select, false),
    value: users.slice(0, Number.isFinite(top) && top > 0 ? top : 100).map((user) => toGraphUser(user, select)),
  });
}

async function patchUser(ctx: GraphContext, { res, body, ids }: GraphRequest, claims: AccessTokenClaims, userKey: string): Promise<void> {
  let patch: unknown;
  try {
    patch = JSON.parse(body.toString("utf8"));
  } catch {
    return sendGraphError(
      res,
      ids,
      400,
      "BadRequest",
      "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
    );
  }
  const profile = (patch as { passwordProfile?: unknown } | null)?.passwordProfile as
    | { password?: unknown; forceChangePasswordNextSignIn?: unknown }
    | undefined;
  const otherProperties = Object.keys((patch as object | null) ?? {}).filter((key) => key !== "passwordProfile");
  if (!profile || typeof profile.password !== "string" || otherProperties.length > 0) {
    return sendGraphError(res, ids, 400, "Request_BadRequest", "The sandbox tenant only supports updating passwordProfile.password on users.");
  }

  // Every write request spends budget, accepted or not, as it does against the real service.
  const budget = ctx.throttle.tryWrite(claims.appid);
  if (!budget.allowed) {
    ctx.state.counters.throttled++;
    await ctx.persist();
    ctx.log.warn({ event: "throttled", appId: claims.appid, retryAfterSeconds: budget.retryAfterSeconds }, "write budget exhausted");
    return sendGraphError(res, ids, 429, "TooManyRequests", GraphMessages.throttled, { "retry-after": String(budget.retryAfterSeconds) });
  }
  ctx.state.counters.writes++;

  if (!hasAnyRole(claims, PASSWORD_WRITE_ROLES)) {
    await ctx.persist();
    return sendGraphError(res, ids, 403, "Authorization_RequestDenied", GraphMessages.forbidden);
  }
  const user = findUser(ctx, userKey);
  if (!user) {
    await ctx.persist();
    return sendGraphError(res, ids, 404, "Request_ResourceNotFound", GraphMessages.notFound(userKey));
  }
  if (user.adminProtected) {
    await ctx.persist();
    return sendGraphError(res, ids, 403, "Authorization_RequestDenied", GraphMessages.forbidden);
  }
  if (user.onPremisesSyncEnabled === true) {
    await ctx.persist();
    return sendGraphError(res, ids, 400, "Request_BadRequest", GraphMessages.dirSynced);
  }
  if (!meetsEntraComplexity(profile.password)) {
    await ctx.persist();
    return sendGraphError(res, ids, 400, "Request_BadRequest", GraphMessages.complexity);
  }

  ctx.state.passwordHashes[user.id] = await hashPassword(profile.password, ctx.scryptCost);
  ctx.state.counters.passwordsSet++;
  await ctx.persist();
  ctx.log.info({ event: "password_set", userId: user.id, appId: claims.appid }, "password set");
  res.writeHead(204, { "request-id": ids.requestId, "client-request-id": ids.clientRequestId });
  res.end();
}
