import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "@pwsync/log";
import { ensureDevPki } from "@pwsync/pki";
import { startSandboxTenant, type SandboxTenantHandle, type SandboxUser } from "@pwsync/sandbox-tenant";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { classifyGraphError, createGraphClient, findUsers, GraphBatcher, setPassword, type GraphClient } from "./index.js";

const TENANT_ID = "6f1c2a4e-0000-4000-8000-00000000ba7c";
const APP = "11111111-0000-4000-8000-0000000000b1";
const clientSecret = randomBytes(24).toString("base64url");
const CANARY = `CANARY${randomBytes(6).toString("hex")}`;
let passwordCounter = 0;
const newPassword = () => `Pw-${CANARY}-${++passwordCounter}aB!`;

const user = (n: number, extra: Partial<SandboxUser> = {}): SandboxUser => ({
  id: `0b0b0b0b-0000-4000-8000-00000000000${n}`,
  userPrincipalName: `user${n}@contoso.example`,
  mail: `user${n}@contoso.example`,
  onPremisesImmutableId: null,
  accountEnabled: true,
  onPremisesSyncEnabled: false,
  adminProtected: false,
  ...extra,
});
const USERS = [
  user(1),
  user(2, { mail: "o'brien+tag&x@contoso.example" }),
  user(3),
  user(4),
  user(5, { adminProtected: true }),
  user(6, { onPremisesSyncEnabled: true }),
];
const [u1, u2, u3, u4, protectedUser, syncedUser] = USERS as [SandboxUser, SandboxUser, SandboxUser, SandboxUser, SandboxUser, SandboxUser];
const MISSING = "0b0b0b0b-0000-4000-8000-00000000dead";

let dir: string;
let caPem: string;
let tls: { cert: string; key: string };
let sandbox: SandboxTenantHandle;
const opened: Array<{ close(): unknown }> = [];

async function startSandbox(writeBudget?: { writes: number; windowMs: number }): Promise<SandboxTenantHandle> {
  const started = await startSandboxTenant({
    tls,
    tenantId: TENANT_ID,
    apps: [{ clientId: APP, clientSecret }],
    users: USERS,
    ...(writeBudget ? { writeBudget } : {}),
    scryptCost: 1024,
    logger: createLogger({ service: "sandbox-tenant", level: "silent" }),
  });
  opened.push(started);
  return started;
}

async function graphClient(tenant: SandboxTenantHandle): Promise<GraphClient> {
  const graph = await createGraphClient({ tenantId: TENANT_ID, clientId: APP, clientSecret, authorityHost: tenant.url, graphBaseUrl: tenant.url, caPem });
  opened.push(graph);
  await findUsers(graph, "mail", u1.mail!); // token cached, so faults hit Graph requests only
  return graph;
}

function faults(tenant: SandboxTenantHandle, body: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${tenant.url}/sandbox/faults`, { method: "POST", ca: caPem, headers: { "content-type": "application/json" } }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

async function outcome(promise: Promise<unknown>) {
  try {
    return { value: await promise };
  } catch (err) {
    return { error: classifyGraphError(err), raw: err };
  }
}

/** Asks the first call alone (it leaves after this turn), then the rest while it is in flight: they share one batch. */
async function behindOne<T>(_batcher: GraphBatcher, first: () => Promise<unknown>, rest: Array<() => Promise<T>>) {
  const lone = first();
  await new Promise((resolve) => setImmediate(resolve));
  const grouped = rest.map((ask) => outcome(ask()));
  await lone;
  return Promise.all(grouped);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "pwsync-graph-batch-"));
  const pki = await ensureDevPki(join(dir, "pki"));
  caPem = await readFile(pki.ca.cert, "utf8");
  tls = { cert: await readFile(pki.server.cert, "utf8"), key: await readFile(pki.server.key, "utf8") };
  sandbox = await startSandbox();
});

afterEach(async () => {
  await faults(sandbox, { reset: true });
});

afterAll(async () => {
  for (const o of opened) await o.close();
  await rm(dir, { recursive: true, force: true });
});

describe("GraphBatcher lookups", () => {
  it("given an idle batcher, when one lookup is asked, then it goes as a plain request, not a batch", async () => {
    const batcher = new GraphBatcher(await graphClient(sandbox));
    const before = sandbox.stats().batches.requests;
    expect((await batcher.findUsers("mail", u1.mail!)).map((u) => u.id)).toEqual([u1.id]);
    expect(sandbox.stats().batches.requests).toBe(before);
  });

  it("given an idle batcher, when lookups are asked in the same turn, then they leave at once as one batch", async () => {
    const batcher = new GraphBatcher(await graphClient(sandbox));
    const before = sandbox.stats().batches;
    const found = await Promise.all([u1, u2, u3].map((u) => batcher.findUsers("userPrincipalName", u.userPrincipalName)));
    expect(found.map((users) => users.map((u) => u.id))).toEqual([[u1.id], [u2.id], [u3.id]]);
    expect(sandbox.stats().batches).toEqual({ requests: before.requests + 1, subRequests: before.subRequests + 3 });
  });

  it("given a request in flight, when more lookups are asked, then they share one $batch and each gets what findUsers alone returns", async () => {
    const graph = await graphClient(sandbox);
    const batcher = new GraphBatcher(graph, { maxBatchesInFlight: 1 });
    const asked = [
      ["mail", u2.mail!],
      ["userPrincipalName", u3.userPrincipalName],
      ["mail", "x' or mail eq 'user1@contoso.example"],
      ["mail", "USER4@contoso.example"],
    ] as const;
    const before = sandbox.stats().batches;
    const batched = await behindOne(
      batcher,
      () => batcher.findUsers("mail", u1.mail!),
      asked.map(
        ([by, value]) =>
          () =>
            batcher.findUsers(by, value),
      ),
    );
    const alone = await Promise.all(asked.map(([by, value]) => findUsers(graph, by, value)));
    expect(batched.map((b) => b.value)).toEqual(alone);
    expect(alone.map((found) => found.map((u) => u.id))).toEqual([[u2.id], [u3.id], [], [u4.id]]);
    expect(sandbox.stats().batches).toEqual({ requests: before.requests + 1, subRequests: before.subRequests + 4 });
  });

  it("given injected 503s, when a batch carries four lookups, then the faults hit single sub-requests, each classified as alone", async () => {
    const batcher = new GraphBatcher(await graphClient(sandbox), { maxBatchesInFlight: 1 });
    // Three failures: the lone request in front takes the first, the batch's sub-requests two.
    expect(await faults(sandbox, { fail: { count: 3, status: 503, retryAfterSeconds: 3 } })).toBe(200);
    const results = await behindOne(
      batcher,
      () => outcome(batcher.findUsers("mail", u1.mail!)),
      [u1, u2, u3, u4].map((u) => () => batcher.findUsers("userPrincipalName", u.userPrincipalName)),
    );
    const failed = results.filter((r) => r.error);
    expect(failed.map((r) => r.error)).toEqual([
      expect.objectContaining({ kind: "transient", httpStatus: 503, code: "serviceNotAvailable", retryAfterMs: 3000 }),
      expect.objectContaining({ kind: "transient", httpStatus: 503, code: "serviceNotAvailable", retryAfterMs: 3000 }),
    ]);
    expect(results.filter((r) => r.value)).toHaveLength(2);
  });
});

describe("GraphBatcher password writes", () => {
  it("given writes with every refusal in one batch, then each error classifies exactly as the single request's", async () => {
    const graph = await graphClient(sandbox);
    const batcher = new GraphBatcher(graph, { maxBatchesInFlight: 1 });
    const weak = `${CANARY}lowercaseonly`.toLowerCase();
    const cases: Array<[string, string]> = [
      [u1.id, newPassword()],
      [u2.id, weak],
      [MISSING, newPassword()],
      [protectedUser.id, newPassword()],
      [syncedUser.id, newPassword()],
    ];
    const before = sandbox.stats().batches.requests;
    const batched = await behindOne(
      batcher,
      () => batcher.findUsers("mail", u1.mail!),
      cases.map(
        ([id, pw]) =>
          () =>
            batcher.setPassword(id, pw),
      ),
    );
    expect(sandbox.stats().batches.requests).toBe(before + 1);
    const alone = await Promise.all(cases.slice(1).map(([id, pw]) => outcome(setPassword(graph, id, pw))));
    expect(batched[0]).toEqual({ value: undefined });
    expect(batched.slice(1).map((b) => b.error)).toEqual(alone.map((a) => a.error));
    expect(batched.slice(1).map((b) => b.error?.kind)).toEqual(["complexity", "notFound", "forbidden", "dirSynced"]);
  });

  it("given a write budget of 2, when a batch carries 4 writes, then each write counts on its own: 2 set, 2 answered 429 with Retry-After", async () => {
    const small = await startSandbox({ writes: 2, windowMs: 60_000 });
    const batcher = new GraphBatcher(await graphClient(small), { maxBatchesInFlight: 1 });
    const results = await behindOne(
      batcher,
      () => batcher.findUsers("mail", u1.mail!),
      [u1, u2, u3, u4].map((u) => () => batcher.setPassword(u.id, newPassword())),
    );
    const throttled = results.filter((r) => r.error);
    expect(throttled).toHaveLength(2);
    for (const t of throttled) {
      expect(t.error).toMatchObject({ kind: "throttled", httpStatus: 429, code: "TooManyRequests" });
      expect(t.error!.retryAfterMs).toBeGreaterThan(0);
      expect(t.error!.retryAfterMs).toBeLessThanOrEqual(60_000);
    }
    expect(small.stats().counters).toMatchObject({ passwordsSet: 2, throttled: 2, writes: 2 });
    expect(small.stats().batches.subRequests).toBe(4);
  });

  it("given a write whose signal has fired, when it would join a batch, then it is never sent and fails with its signal's reason", async () => {
    const batcher = new GraphBatcher(await graphClient(sandbox), { maxBatchesInFlight: 1 });
    const writesBefore = sandbox.stats().counters.writes;
    const expired = AbortSignal.abort(new DOMException("deadline passed", "TimeoutError"));
    const results = await behindOne(batcher, () => batcher.findUsers("mail", u1.mail!), [
      () => batcher.setPassword(u3.id, newPassword(), { forceChangePasswordNextSignIn: false, signal: expired }),
      () => batcher.setPassword(u4.id, newPassword()),
      () => batcher.setPassword(u1.id, newPassword()),
    ]);
    expect((results[0]!.raw as Error).name).toBe("TimeoutError");
    expect(results.slice(1)).toEqual([{ value: undefined }, { value: undefined }]);
    expect(sandbox.stats().counters.writes).toBe(writesBefore + 2);
  });

  it("given a lone write whose signal has fired, then it is never sent", async () => {
    const batcher = new GraphBatcher(await graphClient(sandbox));
    const writesBefore = sandbox.stats().counters.writes;
    const result = await outcome(batcher.setPassword(u3.id, newPassword(), { forceChangePasswordNextSignIn: false, signal: AbortSignal.abort() }));
    expect((result.raw as Error).name).toBe("AbortError");
    expect(sandbox.stats().counters.writes).toBe(writesBefore);
  });

  it("given a batch in flight, when one member's deadline fires, then the batch is given up: that member gets its own reason, the others a transient no-answer", async () => {
    const batcher = new GraphBatcher(await graphClient(sandbox), { maxBatchesInFlight: 1 });
    // The lone request in front answers quickly; each of the batch's requests takes a second.
    expect(await faults(sandbox, { latencyMs: [50, 1_000, 1_000] })).toBe(200);
    const results = await behindOne(batcher, () => batcher.findUsers("mail", u1.mail!), [
      () => batcher.setPassword(u3.id, newPassword(), { forceChangePasswordNextSignIn: false, signal: AbortSignal.timeout(400) }),
      () => batcher.setPassword(u4.id, newPassword(), { forceChangePasswordNextSignIn: false, signal: AbortSignal.timeout(30_000) }),
    ]);
    expect((results[0]!.raw as Error).name).toBe("TimeoutError");
    expect(results[1]!.error).toMatchObject({ kind: "transient", httpStatus: 0, code: "BatchAbandoned" });
  });
});
