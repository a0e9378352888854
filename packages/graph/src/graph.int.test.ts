import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { createLogger } from "@pwsync/log";
import { createAppCredentialCert, ensureDevPki } from "@pwsync/pki";
import { startSandboxTenant, type SandboxTenantHandle, type SandboxUser } from "@pwsync/sandbox-tenant";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { classifyGraphError, createGraphClient, findUsers, setPassword, verifyCredentials, type GraphClient } from "./index.js";

const TENANT_ID = "6f1c2a4e-0000-4000-8000-00000000c0de";
const SECRET_APP = "11111111-0000-4000-8000-000000000001";
const CERT_APP = "11111111-0000-4000-8000-000000000002";
const READONLY_APP = "11111111-0000-4000-8000-000000000003";

// Every password used here embeds this canary so any leak into files, logs or memory dumps is findable.
const CANARY = `CANARY${randomBytes(6).toString("hex")}`;
let passwordCounter = 0;
const newPassword = () => `Pw-${CANARY}-${++passwordCounter}aB!`;
const clientSecret = randomBytes(24).toString("base64url");

const USERS: SandboxUser[] = [
  {
    id: "0a0a0a0a-0000-4000-8000-000000000001",
    userPrincipalName: "alice@contoso.example",
    mail: "alice@contoso.example",
    onPremisesImmutableId: "QWxpY2VHdWlkMDAwMDAwMA==",
    accountEnabled: true,
    onPremisesSyncEnabled: false,
    adminProtected: false,
  },
  {
    id: "0a0a0a0a-0000-4000-8000-000000000002",
    userPrincipalName: "o'brien@contoso.example",
    mail: "o'brien+tag&x@contoso.example",
    onPremisesImmutableId: "J3F1b3RlJ2Q=",
    accountEnabled: true,
    onPremisesSyncEnabled: null,
    adminProtected: false,
  },
  {
    id: "0a0a0a0a-0000-4000-8000-000000000003",
    userPrincipalName: "admin@contoso.example",
    mail: null,
    onPremisesImmutableId: null,
    accountEnabled: true,
    onPremisesSyncEnabled: false,
    adminProtected: true,
  },
  {
    id: "0a0a0a0a-0000-4000-8000-000000000004",
    userPrincipalName: "synced@contoso.example",
    mail: "synced@contoso.example",
    onPremisesImmutableId: "U3luY2VkMDAwMDAwMDAwMA==",
    accountEnabled: true,
    onPremisesSyncEnabled: true,
    adminProtected: false,
  },
];
const [alice, obrien, admin, synced] = USERS as [SandboxUser, SandboxUser, SandboxUser, SandboxUser];

let dir: string;
let caPem: string;
let stateFile: string;
let appCertPath: string;
let sandbox: SandboxTenantHandle;
let logText = "";
const clients: GraphClient[] = [];

function sandboxCall(path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${sandbox.url}${path}`,
      { method: body === undefined ? "GET" : "POST", ca: caPem, headers: { "content-type": "application/json" } },
      (res) => {
        let text = "";
        res.on("data", (chunk) => (text += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined }));
      },
    );
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

const signin = async (upn: string, password: string) => (await sandboxCall("/sandbox/signin", { userPrincipalName: upn, password })).status;

async function client(auth: { clientId: string; clientSecret?: string; certificatePath?: string }, graphBaseUrl?: string): Promise<GraphClient> {
  const created = await createGraphClient({ tenantId: TENANT_ID, authorityHost: sandbox.url, graphBaseUrl: graphBaseUrl ?? sandbox.url, caPem, ...auth });
  clients.push(created);
  return created;
}

async function failure(promise: Promise<unknown>) {
  try {
    await promise;
  } catch (err) {
    return classifyGraphError(err);
  }
  throw new Error("expected the Graph call to fail");
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "pwsync-graph-"));
  const pki = await ensureDevPki(join(dir, "pki"));
  caPem = await readFile(pki.ca.cert, "utf8");
  const appCert = await createAppCredentialCert("pwsync graph test app");
  appCertPath = join(dir, "app.pem");
  await writeFile(appCertPath, appCert.key + appCert.cert, { mode: 0o600 });
  const usersFile = join(dir, "users.json");
  await writeFile(usersFile, JSON.stringify({ users: USERS }));
  stateFile = join(dir, "state.json");
  const logSink = new Writable({ write: (chunk, _enc, done) => ((logText += chunk.toString()), done()) });
  sandbox = await startSandboxTenant({
    tls: { cert: await readFile(pki.server.cert, "utf8"), key: await readFile(pki.server.key, "utf8") },
    tenantId: TENANT_ID,
    apps: [
      { clientId: SECRET_APP, clientSecret },
      { clientId: CERT_APP, certificates: [appCert.cert] },
      { clientId: READONLY_APP, clientSecret, roles: ["User.Read.All"] },
    ],
    usersFile,
    stateFile,
    logger: createLogger({ service: "sandbox-tenant", level: "debug", destination: logSink }),
  });
});

afterAll(async () => {
  clients.forEach((c) => c.close());
  await sandbox?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("authentication through the real SDK credentials", () => {
  it("a client secret obtains a token and reads the directory", async () => {
    const result = await verifyCredentials(await client({ clientId: SECRET_APP, clientSecret }));
    expect(result.ok).toBe(true);
  });

  it("a certificate (client assertion) obtains a token and reads the directory", async () => {
    const result = await verifyCredentials(await client({ clientId: CERT_APP, certificatePath: appCertPath }));
    expect(result.ok).toBe(true);
  });

  it("a wrong secret is classified as an auth failure, at token and at Graph call", async () => {
    const wrong = await client({ clientId: SECRET_APP, clientSecret: `${clientSecret}x` });
    const result = await verifyCredentials(wrong);
    expect(result).toMatchObject({ ok: false, stage: "token", error: { kind: "auth" } });
    expect(result.ok ? "" : result.error.message).toContain("AADSTS7000215");
    expect((await failure(findUsers(wrong, "mail", alice.mail!))).kind).toBe("auth");
  });
});

describe("user lookups", () => {
  it.each([
    ["immutableId", alice.onPremisesImmutableId!],
    ["mail", "ALICE@contoso.example"],
    ["userPrincipalName", alice.userPrincipalName],
  ] as const)("finds a user by %s", async (by, value) => {
    const users = await findUsers(await client({ clientId: SECRET_APP, clientSecret }), by, value);
    expect(users).toEqual([{ id: alice.id, userPrincipalName: alice.userPrincipalName, mail: alice.mail, accountEnabled: true, onPremisesSyncEnabled: false }]);
  });

  it("values containing quotes and URL metacharacters match exactly and cannot inject", async () => {
    const graph = await client({ clientId: SECRET_APP, clientSecret });
    expect((await findUsers(graph, "userPrincipalName", obrien.userPrincipalName)).map((u) => u.id)).toEqual([obrien.id]);
    expect((await findUsers(graph, "mail", obrien.mail!)).map((u) => u.id)).toEqual([obrien.id]);
    expect((await findUsers(graph, "immutableId", obrien.onPremisesImmutableId!)).map((u) => u.id)).toEqual([obrien.id]);
    expect(await findUsers(graph, "mail", "x' or mail eq 'alice@contoso.example")).toEqual([]);
    expect(await findUsers(graph, "immutableId", "nobody")).toEqual([]);
  });
});

describe("password resets", () => {
  it("setPassword makes the new password work and the old one fail", async () => {
    const graph = await client({ clientId: CERT_APP, certificatePath: appCertPath });
    const first = newPassword();
    const second = newPassword();
    await setPassword(graph, alice.id, first);
    expect(await signin(alice.userPrincipalName, first)).toBe(200);
    await setPassword(graph, alice.id, second, { forceChangePasswordNextSignIn: false });
    expect(await signin(alice.userPrincipalName, second)).toBe(200);
    expect(await signin(alice.userPrincipalName, first)).toBe(401);
  });

  it("classifies complexity, not found, forbidden (role and protected target) and dir-synced refusals", async () => {
    const graph = await client({ clientId: SECRET_APP, clientSecret });
    expect(await failure(setPassword(graph, alice.id, `${CANARY}lowercaseonly`.toLowerCase()))).toMatchObject({
      kind: "complexity",
      httpStatus: 400,
      code: "Request_BadRequest",
    });
    expect(await failure(setPassword(graph, "0a0a0a0a-0000-4000-8000-00000000dead", newPassword()))).toMatchObject({
      kind: "notFound",
      httpStatus: 404,
      code: "Request_ResourceNotFound",
    });
    expect(await failure(setPassword(graph, admin.id, newPassword()))).toMatchObject({
      kind: "forbidden",
      httpStatus: 403,
      code: "Authorization_RequestDenied",
      message: "Insufficient privileges to complete the operation.",
    });
    const readOnly = await client({ clientId: READONLY_APP, clientSecret });
    expect((await failure(setPassword(readOnly, alice.id, newPassword()))).kind).toBe("forbidden");
    expect(await failure(setPassword(graph, synced.id, newPassword()))).toMatchObject({ kind: "dirSynced", httpStatus: 400 });
  });

  it("an injected 503 surfaces on the first answer as transient (the SDK does not retry)", async () => {
    const graph = await client({ clientId: SECRET_APP, clientSecret });
    await findUsers(graph, "mail", alice.mail!); // token cached, so the fault hits Graph
    expect((await sandboxCall("/sandbox/faults", { fail: { count: 1, status: 503, retryAfterSeconds: 3 } })).status).toBe(200);
    expect(await failure(findUsers(graph, "mail", alice.mail!))).toMatchObject({
      kind: "transient",
      httpStatus: 503,
      code: "serviceNotAvailable",
      retryAfterMs: 3000,
    });
    expect(await findUsers(graph, "mail", alice.mail!)).toHaveLength(1);
  });

  it("an unreachable Graph host is transient with status 0", async () => {
    const closedPort = new URL(sandbox.url);
    closedPort.port = "1";
    const graph = await client({ clientId: SECRET_APP, clientSecret }, closedPort.origin);
    expect(await failure(findUsers(graph, "mail", alice.mail!))).toMatchObject({ kind: "transient", httpStatus: 0 });
  });
});

describe("write budget", () => {
  it("exceeding the app's identity write budget yields 429 with Retry-After, classified throttled", async () => {
    const small = await startSandboxTenant({
      tls: { cert: await readFile(join(dir, "pki", "server.pem"), "utf8"), key: await readFile(join(dir, "pki", "server.key"), "utf8") },
      tenantId: TENANT_ID,
      apps: [{ clientId: SECRET_APP, clientSecret }],
      users: USERS,
      writeBudget: { writes: 2, windowMs: 60_000 },
      logger: createLogger({ service: "sandbox-tenant", level: "silent" }),
    });
    try {
      const graph = await createGraphClient({
        tenantId: TENANT_ID,
        clientId: SECRET_APP,
        clientSecret,
        authorityHost: small.url,
        graphBaseUrl: small.url,
        caPem,
      });
      clients.push(graph);
      await setPassword(graph, alice.id, newPassword());
      await setPassword(graph, alice.id, newPassword());
      const throttled = await failure(setPassword(graph, alice.id, newPassword()));
      expect(throttled).toMatchObject({ kind: "throttled", httpStatus: 429, code: "TooManyRequests" });
      expect(throttled.retryAfterMs).toBeGreaterThan(0);
      expect(throttled.retryAfterMs).toBeLessThanOrEqual(60_000);
      expect(small.stats().counters).toMatchObject({ passwordsSet: 2, throttled: 1 });
    } finally {
      await small.close();
    }
  });
});

describe("no plaintext at rest", () => {
  it("the state file, the sandbox's memory dump and its logs never contain a password used", async () => {
    expect(passwordCounter).toBeGreaterThan(3);
    const stateText = await readFile(stateFile, "utf8");
    expect(JSON.parse(stateText).passwordHashes[alice.id]).toMatch(/^scrypt\$/);
    expect(stateText).not.toContain(CANARY);
    expect(sandbox.dumpState()).not.toContain(CANARY);
    expect(JSON.stringify((await sandboxCall("/sandbox/state")).json)).not.toContain(CANARY);
    expect(logText).toContain("password_set");
    expect(logText).not.toContain(CANARY);
    expect(logText).not.toContain(clientSecret);
  });
});
