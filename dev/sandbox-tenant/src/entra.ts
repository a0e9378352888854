import { randomUUID } from "node:crypto";
import type { ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { AccessTokens } from "./access-token.js";
import { secretMatches, type ResolvedApp } from "./apps.js";
import { verifyClientAssertion } from "./client-assertion.js";
import { sendJson } from "./graph-errors.js";

const GRAPH_RESOURCES = ["https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000"];
const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

export interface EntraContext {
  tenantId: string;
  apps: Map<string, ResolvedApp>;
  tokens: AccessTokens;
  log: Logger;
  onTokenIssued(): void;
  onTokenRefused(): void;
}

function aadTimestamp(now: Date): string {
  return now
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, "Z");
}

/** AADSTS error body as the v2.0 token endpoint returns it. */
function sendAadError(res: ServerResponse, status: number, error: string, code: number, description: string): void {
  const traceId = randomUUID();
  const correlationId = randomUUID();
  const timestamp = aadTimestamp(new Date());
  sendJson(res, status, {
    error,
    error_description: `AADSTS${code}: ${description} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${timestamp}`,
    error_codes: [code],
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
    error_uri: `${"https://login.microsoftonline.com"}/error?code=${code}`,
  });
}

export function openIdConfiguration(origin: string, tenant: string): Record<string, unknown> {
  const base = `${origin}/${tenant}`;
  return {
    token_endpoint: `${base}/oauth2/v2.0/token`,
    token_endpoint_auth_methods_supported: ["client_secret_post", "private_key_jwt", "client_secret_basic"],
    jwks_uri: `${base}/discovery/v2.0/keys`,
    response_modes_supported: ["query", "fragment", "form_post"],
    subject_types_supported: ["pairwise"],
    id_token_signing_alg_values_supported: ["RS256"],
    response_types_supported: ["code", "id_token", "code id_token", "id_token token"],
    scopes_supported: ["openid", "profile", "email", "offline_access"],
    issuer: `${base}/v2.0`,
    request_uri_parameter_supported: false,
    userinfo_endpoint: `${origin}/oidc/userinfo`,
    authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
    device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${base}/oauth2/v2.0/logout`,
    claims_supported: ["sub", "iss", "aud", "exp", "iat", "tid", "oid"],
    tenant_region_scope: null,
    cloud_instance_name: "sandbox.invalid",
    cloud_graph_host_name: "graph.windows.net",
    msgraph_host: "graph.microsoft.com",
    rbac_url: "https://pas.windows.net",
  };
}

/** Answer to MSAL's instance discovery: the sandbox host is its own (only) alias. */
export function instanceDiscovery(origin: string, host: string, authorizationEndpoint: string | null): Record<string, unknown> {
  const tenant = /^https?:\/\/[^/]+\/([^/]+)\//.exec(authorizationEndpoint ?? "")?.[1] ?? "common";
  return {
    tenant_discovery_endpoint: `${origin}/${tenant}/v2.0/.well-known/openid-configuration`,
    "api-version": "1.1",
    metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
  };
}

function scopeError(scope: string | null): { code: number; error: string; description: string } | undefined {
  const scopes = (scope ?? "").split(" ").filter(Boolean);
  const defaults = scopes.filter((s) => s.endsWith("/.default"));
  if (scopes.length === 0 || defaults.length !== 1) {
    return {
      code: 1002012,
      error: "invalid_scope",
      description: `The provided value for scope ${scope ?? ""} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
    };
  }
  const resource = defaults[0]!.slice(0, -"/.default".length).replace(/\/$/, "");
  if (!GRAPH_RESOURCES.includes(resource.toLowerCase())) {
    return {
      code: 500011,
      error: "invalid_resource",
      description: `The resource principal named ${resource} was not found in the tenant. The sandbox tenant only issues tokens for Microsoft Graph.`,
    };
  }
  return undefined;
}

/** POST /{tenant}/oauth2/v2.0/token, client credentials grant only (all pwsync needs). */
export function handleTokenRequest(
  ctx: EntraContext,
  res: ServerResponse,
  tenant: string,
  form: URLSearchParams,
  tokenEndpointUrl: string,
  issuerUrl: string,
): void {
  const refuse = (status: number, error: string, code: number, description: string) => {
    ctx.onTokenRefused();
    ctx.log.info({ event: "token_refused", aadsts: code, clientId: form.get("client_id") }, "token request refused");
    sendAadError(res, status, error, code, description);
  };

  if (tenant.toLowerCase() !== ctx.tenantId.toLowerCase()) {
    return refuse(
      400,
      "invalid_request",
      90002,
      `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`,
    );
  }
  if (form.get("grant_type") !== "client_credentials") {
    return refuse(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type. The sandbox tenant supports client_credentials only.");
  }
  const clientId = form.get("client_id") ?? "";
  const app = ctx.apps.get(clientId.toLowerCase());
  if (!app) {
    return refuse(
      400,
      "unauthorized_client",
      700016,
      `Application with identifier '${clientId}' was not found in the directory '${ctx.tenantId}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.`,
    );
  }
  const badScope = scopeError(form.get("scope"));
  if (badScope) return refuse(400, badScope.error, badScope.code, badScope.description);

  const secret = form.get("client_secret");
  const assertion = form.get("client_assertion");
  if (secret !== null) {
    if (!secretMatches(app, secret)) {
      return refuse(
        401,
        "invalid_client",
        7000215,
        `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${app.clientId}'.`,
      );
    }
  } else if (assertion !== null) {
    if (form.get("client_assertion_type") !== JWT_BEARER) {
      return refuse(400, "invalid_request", 50027, "Invalid client_assertion_type.");
    }
    const verdict = verifyClientAssertion(assertion, app, [tokenEndpointUrl, issuerUrl], Math.floor(Date.now() / 1000));
    if (!verdict.ok) return refuse(401, "invalid_client", verdict.code, verdict.description);
  } else {
    return refuse(401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
  }

  const accessToken = ctx.tokens.issue(app.clientId, app.roles, Math.floor(Date.now() / 1000));
  ctx.onTokenIssued();
  ctx.log.info({ event: "token_issued", clientId: app.clientId, method: secret !== null ? "secret" : "certificate" }, "token issued");
  sendJson(
    res,
    200,
    {
      token_type: "Bearer",
      expires_in: ctx.tokens.lifetime,
      ext_expires_in: ctx.tokens.lifetime,
      access_token: accessToken,
    },
    { "cache-control": "no-store, no-cache", pragma: "no-cache" },
  );
}
