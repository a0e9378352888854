import { readFile } from "node:fs/promises";
import { Agent } from "node:https";
import type { AccessToken, TokenCredential } from "@azure/identity";
import type { PipelinePolicy } from "@azure/core-rest-pipeline";
import type { Client, Middleware } from "@microsoft/microsoft-graph-client";
import { NodeHttpsHandler } from "./node-https-handler.js";

export const MICROSOFT_AUTHORITY_HOST = "https://login.microsoftonline.com";
export const MICROSOFT_GRAPH_BASE_URL = "https://graph.microsoft.com";
/** Tokens are always requested for Graph's resource, also from the sandbox tenant. */
export const GRAPH_SCOPE = "https://graph.microsoft.com/.default";

export interface GraphClientOptions {
  tenantId: string;
  clientId: string;
  clientSecret?: string;
  /** PEM file holding the app's certificate and its private key. */
  certificatePath?: string;
  authorityHost?: string;
  graphBaseUrl?: string;
  /** Extra CA (PEM) to trust for both token and Graph calls, e.g. the dev PKI for the sandbox tenant. */
  caPem?: string;
}

export interface GraphClient {
  readonly sdk: Client;
  readonly credential: TokenCredential;
  readonly graphBaseUrl: string;
  close(): void;
}

function trustCaPolicy(agent: Agent): PipelinePolicy {
  return {
    name: "pwsyncTrustExtraCa",
    sendRequest: (request, next) => {
      request.agent = agent;
      return next(request);
    },
  };
}

/**
 * Hands out the same access token until shortly before it expires. MSAL caches tokens too, but
 * its cache lookup on every Graph request showed up as a top CPU cost under load.
 */
function reuseTokens(credential: TokenCredential, refreshBeforeMs = 5 * 60_000): TokenCredential {
  let current: AccessToken | undefined;
  let pending: Promise<AccessToken | null> | undefined;
  return {
    async getToken(scopes, options) {
      if (current && current.expiresOnTimestamp - Date.now() > refreshBeforeMs) return current;
      pending ??= credential.getToken(scopes, options).finally(() => (pending = undefined));
      const token = await pending;
      if (token) current = token;
      return token;
    },
  };
}

/**
 * Imported here rather than at the top: MSAL and the Graph SDK are about 11 MB of a process's
 * memory, and the admin service needs them only once someone asks it to verify the credentials.
 */
export async function createGraphClient(options: GraphClientOptions): Promise<GraphClient> {
  const [
    { ClientCertificateCredential, ClientSecretCredential },
    { AuthenticationHandler, Client, HTTPMessageHandler, TelemetryHandler },
    { TokenCredentialAuthenticationProvider },
  ] = await Promise.all([
    import("@azure/identity"),
    import("@microsoft/microsoft-graph-client"),
    import("@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials/index.js"),
  ]);
  const authorityHost = (options.authorityHost ?? MICROSOFT_AUTHORITY_HOST).replace(/\/+$/, "");
  const graphBaseUrl = (options.graphBaseUrl ?? MICROSOFT_GRAPH_BASE_URL).replace(/\/+$/, "");
  const identityAgent = options.caPem ? new Agent({ ca: options.caPem, keepAlive: true }) : undefined;

  const credentialOptions = {
    authorityHost,
    // MSAL validates any authority it does not know by calling login.microsoftonline.com's instance
    // discovery; against a private authority (the sandbox tenant) that fails with
    // endpoints_resolution_error, so discovery is switched off for non-Microsoft hosts only.
    disableInstanceDiscovery: new URL(authorityHost).hostname !== new URL(MICROSOFT_AUTHORITY_HOST).hostname,
    additionalPolicies: identityAgent ? [{ policy: trustCaPolicy(identityAgent), position: "perCall" as const }] : [],
  };

  let credential: TokenCredential;
  if (options.clientSecret !== undefined && options.certificatePath !== undefined) {
    throw new Error("configure either a client secret or a certificate for Graph, not both");
  } else if (options.clientSecret !== undefined) {
    credential = new ClientSecretCredential(options.tenantId, options.clientId, options.clientSecret, credentialOptions);
  } else if (options.certificatePath !== undefined) {
    // Read once up front so a missing or unreadable file fails at start-up, not on the first reset.
    const certificate = await readFile(options.certificatePath, "utf8");
    credential = new ClientCertificateCredential(options.tenantId, options.clientId, { certificate }, credentialOptions);
  } else {
    throw new Error("Graph credentials need a client secret or a certificate path");
  }

  const authProvider = new TokenCredentialAuthenticationProvider(reuseTokens(credential), { scopes: [GRAPH_SCOPE] });
  const transport = options.caPem ? new NodeHttpsHandler(options.caPem) : new HTTPMessageHandler();
  // The SDK's default chain contains a RetryHandler that silently retries 429/503/504 up to three
  // times. pwsync schedules its own retries (RetryScheduled events honouring Retry-After), so the
  // chain is built here without it: every Graph failure surfaces to the caller on the first answer.
  const middleware: Middleware[] = [new AuthenticationHandler(authProvider), new TelemetryHandler(), transport];

  const sdk = Client.initWithMiddleware({
    middleware,
    baseUrl: `${graphBaseUrl}/`,
    defaultVersion: "v1.0",
    // The SDK only attaches the bearer token for graph.microsoft.com and these hosts.
    customHosts: new Set([new URL(graphBaseUrl).hostname]),
  });

  return {
    sdk,
    credential,
    graphBaseUrl,
    close: () => {
      if (transport instanceof NodeHttpsHandler) transport.close();
      identityAgent?.destroy();
    },
  };
}
