import { randomBytes, sign, createHash, X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "@pwsync/log";
import { createAppCredentialCert, ensureDevPki, type CertAndKey } from "@pwsync/pki";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSandboxTenant, type SandboxTenantHandle, type SandboxTenantOptions, type SandboxUser } from "./index.js";

const TENANT = "0c0c0c0c-0000-4000-8000-000000000001";
const APP = "0d0d0d0d-0000-4000-8000-000000000001";
const secret = randomBytes(16).toString("hex");
const USERS: SandboxUser[] = [
  {
    id: "u-1",
    userPrincipalName: "bob@fabrikam.example",
    mail: "bob@fabrikam.example",
    onPremisesImmutableId: "Qm9iR3VpZA==",
    accountEnabled: true,
    onPremisesSyncEnabled: false,
    adminProtected: false,
  },
];

let dir: string;
let ca: string;
let appCert: CertAndKey;
let options: SandboxTenantOptions;
let sandbox: SandboxTenantHandle;

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  json: any;
}

function call(method: string, path: string, body?: string | object, headers: Record<string, string> = {}): Promise<Reply> {
  const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
  const contentType = typeof body === "string" ? "application/x-www-form-urlencoded" : "application/json";
  return new Promise((resolve, reject) => {
    const req = request(`${sandbox.url}${path}`, { method, ca, headers: { "content-type": contentType, ...headers } }, (res) => {
      let text = "";
      res.on("data", (chunk) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, json: text ? JSON.parse(text) : undefined }));
    });
    req.on("error", reject);
    req.end(payload);
  });
}

const tokenForm = (fields: Record<string, string>) =>
  new URLSearchParams({ grant_type: "client_credentials", scope: "https://graph.microsoft.com/.default", client_id: APP, ...fields }).toString();

async function token(): Promise<string> {
  const reply = await call("POST", `/${TENANT}/oauth2/v2.0/token`, tokenForm({ client_secret: secret }));
  return reply.json.access_token as string;
}

function assertion(cert: CertAndKey, claims: Record<string, unknown>): string {
  const raw = new X509Certificate(cert.cert).raw;
  const header = { alg: "RS256", typ: "JWT", x5t: createHash("sha1").update(raw).digest("base64url") };
  const now = Math.floor(Date.now() / 1000);
  const payload = {
    aud: `${sandbox.url}/${TENANT}/oauth2/v2.0/token`,
    iss: APP,
    sub: APP,
    nbf: now,
    exp: now + 600,
    jti: randomBytes(8).toString("hex"),
    ...claims,
  };
  const data = `${Buffer.from(JSON.stringify(header)).toString("base64url")}.${Buffer.from(JSON.stringify(payload)).toString("base64url")}`;
  return `${data}.${sign("sha256", Buffer.from(data), cert.key).toString("base64url")}`;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "pwsync-sandbox-"));
  const pki = await ensureDevPki(join(dir, "pki"));
  ca = await readFile(pki.ca.cert, "utf8");
  appCert = await createAppCredentialCert("sandbox test app");
  options = {
    tls: { cert: await readFile(pki.server.cert, "utf8"), key: await readFile(pki.server.key, "utf8") },
    tenantId: TENANT,
    apps: [{ clientId: APP, clientSecret: secret, certificates: [appCert.cert] }],
    users: USERS,
    stateFile: join(dir, "state.json"),
    logger: createLogger({ service: "sandbox-tenant", level: "silent" }),
  };
  sandbox = await startSandboxTenant(options);
});

afterAll(async () => {
  await sandbox?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("token endpoint", () => {
  it("issues a bearer token for a correct secret", async () => {
    const reply = await call("POST", `/${TENANT}/oauth2/v2.0/token`, tokenForm({ client_secret: secret }));
    expect(reply.status).toBe(200);
    expect(reply.json).toMatchObject({ token_type: "Bearer", expires_in: expect.any(Number) });
    expect(reply.json.access_token).toEqual(expect.any(String));
  });

  it("answers a wrong secret with AADSTS7000215 in Entra's error shape", async () => {
    const reply = await call("POST", `/${TENANT}/oauth2/v2.0/token`, tokenForm({ client_secret: "nope" }));
    expect(reply.status).toBe(401);
    expect(reply.json).toMatchObject({ error: "invalid_client", error_codes: [7000215], trace_id: expect.any(String), correlation_id: expect.any(String) });
    expect(reply.json.error_description).toMatch(/^AADSTS7000215: Invalid client secret provided/);
  });

  it("refuses an unknown tenant and an unknown app", async () => {
    expect((await call("POST", `/other-tenant/oauth2/v2.0/token`, tokenForm({ client_secret: secret }))).json.error_codes).toEqual([90002]);
    const unknownApp = await call("POST", `/${TENANT}/oauth2/v2.0/token`, tokenForm({ client_id: "nobody", client_secret: secret }));
    expect(unknownApp.json).toMatchObject({ error: "unauthorized_client", error_codes: [700016] });
  });

  it("accepts a valid RS256 client assertion and refuses forged, foreign or expired ones", async () => {
    const form = (jwt: string) => tokenForm({ client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", client_assertion: jwt });
    expect((await call("POST", `/${TENANT}/oauth2/v2.0/token`, form(assertion(appCert, {})))).status).toBe(200);

    const stranger = await createAppCredentialCert("not registered");
    expect((await call("POST", `/${TENANT}/oauth2/v2.0/token`, form(assertion(stranger, {})))).json.error_codes).toEqual([700027]);

    const forged = assertion(appCert, {}).split(".");
    const tampered = `${forged[0]}.${Buffer.from(JSON.stringify({ aud: "x", iss: APP, sub: APP, exp: 9e9, nbf: 0 })).toString("base64url")}.${forged[2]}`;
    expect((await call("POST", `/${TENANT}/oauth2/v2.0/token`, form(tampered))).json.error_codes).toEqual([700027]);

    const expired = assertion(appCert, { exp: Math.floor(Date.now() / 1000) - 3600, nbf: Math.floor(Date.now() / 1000) - 7200 });
    expect((await call("POST", `/${TENANT}/oauth2/v2.0/token`, form(expired))).json.error_codes).toEqual([700024]);

    const wrongAudience = assertion(appCert, { aud: "https://login.microsoftonline.com/other/oauth2/v2.0/token" });
    expect((await call("POST", `/${TENANT}/oauth2/v2.0/token`, form(wrongAudience))).json.error).toBe("invalid_client");
  });

  it("serves the OpenID configuration MSAL resolves endpoints from", async () => {
    const reply = await call("GET", `/${TENANT}/v2.0/.well-known/openid-configuration`);
    expect(reply.json.token_endpoint).toBe(`${sandbox.url}/${TENANT}/oauth2/v2.0/token`);
    expect(reply.json.issuer).toBe(`${sandbox.url}/${TENANT}/v2.0`);
  });
});

describe("graph", () => {
  it("rejects a missing or forged bearer token with InvalidAuthenticationToken", async () => {
    const missing = await call("GET", "/v1.0/users");
    expect(missing.status).toBe(401);
    expect(missing.json.error).toMatchObject({
      code: "InvalidAuthenticationToken",
      innerError: { "request-id": expect.any(String), date: expect.any(String) },
    });
    const forged = await call("GET", "/v1.0/users", undefined, { authorization: "Bearer a.b.c" });
    expect(forged.json.error.code).toBe("InvalidAuthenticationToken");
  });

  it("lists with $filter and $select in Graph's collection shape and echoes client-request-id", async () => {
    const reply = await call(
      "GET",
      `/v1.0/users?$filter=${encodeURIComponent("onPremisesImmutableId eq 'Qm9iR3VpZA=='")}&$select=id,accountEnabled`,
      undefined,
      {
        authorization: `Bearer ${await token()}`,
      },
    );
    expect(reply.json).toEqual({ "@odata.context": `${sandbox.url}/v1.0/$metadata#users(id,accountEnabled)`, value: [{ id: "u-1", accountEnabled: true }] });
    const unsupported = await call("GET", `/v1.0/users?$filter=${encodeURIComponent("city eq 'x'")}`, undefined, {
      authorization: `Bearer ${await token()}`,
      "client-request-id": "my-request",
    });
    expect(unsupported.status).toBe(400);
    expect(unsupported.json.error.innerError["client-request-id"]).toBe("my-request");
  });

  it("injects 429 with Retry-After, then recovers; reset clears pending faults", async () => {
    const auth = { authorization: `Bearer ${await token()}` };
    await call("POST", "/sandbox/faults", { fail: { count: 1, status: 429, retryAfterSeconds: 9 } });
    const throttled = await call("GET", "/v1.0/users/u-1", undefined, auth);
    expect(throttled.status).toBe(429);
    expect(throttled.headers["retry-after"]).toBe("9");
    expect(throttled.json.error.code).toBe("TooManyRequests");
    expect((await call("GET", "/v1.0/users/u-1", undefined, auth)).status).toBe(200);

    await call("POST", "/sandbox/faults", { fail: { count: 5, status: 500 } });
    await call("POST", "/sandbox/faults", { reset: true });
    expect((await call("GET", "/v1.0/users/u-1", undefined, auth)).status).toBe(200);
    const stats = await call("GET", "/sandbox/stats");
    expect(stats.json).toMatchObject({ sandbox: true, counters: { throttled: 1, injectedFailures: 1 }, faults: { pendingFailures: 0 } });
  });

  it("consumes per-call latency faults one call at a time", async () => {
    const auth = { authorization: `Bearer ${await token()}` };
    await call("POST", "/sandbox/faults", { latencyMs: [20, 20] });
    expect((await call("GET", "/sandbox/stats")).json.faults.queuedLatencies).toBe(2);
    expect((await call("GET", "/v1.0/users/u-1", undefined, auth)).status).toBe(200);
    expect((await call("GET", "/sandbox/stats")).json.faults.queuedLatencies).toBe(1);
    await call("POST", "/sandbox/faults", { reset: true });
  });

  it("refuses malformed fault requests", async () => {
    expect((await call("POST", "/sandbox/faults", { fail: { count: 1, status: 418 } })).status).toBe(400);
  });
});

describe("graph JSON batching (POST /v1.0/$batch)", () => {
  const lookup = (id: string, upn: string) => ({ id, method: "GET", url: `/users?$filter=userPrincipalName eq '${upn}'&$select=id` });

  it("answers each request under its id with its own status, headers and body", async () => {
    const auth = { authorization: `Bearer ${await token()}` };
    const reply = await call(
      "POST",
      "/v1.0/$batch",
      {
        requests: [
          lookup("a", "bob@fabrikam.example"),
          { id: "b", method: "GET", url: "users/nobody@fabrikam.example" },
          { id: "c", method: "PATCH", url: "/users/u-1", headers: { "Content-Type": "application/json" }, body: { passwordProfile: { password: "weak" } } },
        ],
      },
      auth,
    );
    expect(reply.status).toBe(200);
    const byId = Object.fromEntries((reply.json.responses as Array<{ id: string }>).map((r) => [r.id, r]));
    expect(byId.a).toMatchObject({ status: 200, headers: { "Content-Type": expect.stringMatching(/^application\/json/) }, body: { value: [{ id: "u-1" }] } });
    expect(byId.b).toMatchObject({ status: 404, body: { error: { code: "Request_ResourceNotFound" } } });
    expect(byId.c).toMatchObject({ status: 400, body: { error: { code: "Request_BadRequest" } } });
  });

  it("applies injected faults to single requests of the batch, 429s with Retry-After", async () => {
    const auth = { authorization: `Bearer ${await token()}` };
    expect((await call("POST", "/sandbox/faults", { fail: { count: 1, status: 429, retryAfterSeconds: 7 } })).status).toBe(200);
    const reply = await call("POST", "/v1.0/$batch", { requests: [lookup("1", "bob@fabrikam.example"), lookup("2", "bob@fabrikam.example")] }, auth);
    const statuses = (reply.json.responses as Array<{ status: number; headers: Record<string, string> }>).map((r) => r.status).sort();
    expect(statuses).toEqual([200, 429]);
    const throttled = (reply.json.responses as Array<{ status: number; headers: Record<string, string> }>).find((r) => r.status === 429)!;
    expect(throttled.headers["Retry-After"]).toBe("7");
  });

  it("refuses more than 20 requests, duplicate ids, bodies without Content-Type and a missing token, in Graph's error shape", async () => {
    const auth = { authorization: `Bearer ${await token()}` };
    const many = Array.from({ length: 21 }, (_, i) => lookup(String(i), "bob@fabrikam.example"));
    const tooMany = await call("POST", "/v1.0/$batch", { requests: many }, auth);
    expect(tooMany.status).toBe(400);
    expect(tooMany.json.error).toMatchObject({ code: "BadRequest", message: expect.stringContaining("20"), innerError: { "request-id": expect.any(String) } });
    expect((await call("POST", "/v1.0/$batch", { requests: many.slice(0, 20) }, auth)).status).toBe(200);
    expect((await call("POST", "/v1.0/$batch", { requests: [lookup("x", "a"), lookup("x", "b")] }, auth)).status).toBe(400);
    const noType = await call("POST", "/v1.0/$batch", { requests: [{ id: "1", method: "PATCH", url: "/users/u-1", body: {} }] }, auth);
    expect(noType.status).toBe(400);
    expect((await call("POST", "/v1.0/$batch", { requests: [lookup("1", "bob@fabrikam.example")] })).status).toBe(401);
  });
});

describe("state", () => {
  it("keeps password hashes across a restart, so sign-in still works", async () => {
    const password = `Pw-${randomBytes(6).toString("hex")}-aB1!`;
    const auth = { authorization: `Bearer ${await token()}` };
    expect((await call("PATCH", "/v1.0/users/u-1", { passwordProfile: { password, forceChangePasswordNextSignIn: false } }, auth)).status).toBe(204);
    await sandbox.close();
    sandbox = await startSandboxTenant(options);
    expect((await call("POST", "/sandbox/signin", { userPrincipalName: "BOB@fabrikam.example", password })).status).toBe(200);
    expect((await call("POST", "/sandbox/signin", { userPrincipalName: "bob@fabrikam.example", password: `${password}x` })).status).toBe(401);
    // A token issued before the restart stays valid because the signing key is part of the state.
    expect((await call("GET", "/v1.0/users/u-1", undefined, auth)).status).toBe(200);
    expect(await readFile(options.stateFile!, "utf8")).not.toContain(password);
  });
});
