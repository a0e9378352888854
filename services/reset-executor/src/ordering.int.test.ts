import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { toBinary } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { TimestampSchema, type Timestamp } from "@bufbuild/protobuf/wkt";
import { buildPasswordChange } from "@pwsync/agent-link";
import { generateRecipientKeyPair, loadRecipientKeyPair, loadRecipientPublicKey } from "@pwsync/crypto";
import { changeStreamId, isChangeOutcome, openEventLog, readStream, type EventLog, type Processor } from "@pwsync/eventlog";
import { createGraphClient, type GraphClient } from "@pwsync/graph";
import { commitChanges, validateChange } from "@pwsync/ingest";
import { createLogger } from "@pwsync/log";
import { ensureDevPki } from "@pwsync/pki";
import { SealedSecretSchema } from "@pwsync/proto";
import { startResolver } from "@pwsync/resolver";
import { sandboxControl, startSandboxTenant, type SandboxTenantHandle } from "@pwsync/sandbox-tenant";
import { createTestDatabase, eventually } from "@pwsync/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { executorSection } from "./config.js";
import { startExecutor } from "./processor.js";
import { SlidingWindowLimiter } from "./rate-limiter.js";

// Issue 11, finding 2 ("older password wins"), against real Postgres, resolver, executor and
// the sandbox tenant: changes enter exactly as ingest commits them, carrying what the agent
// sends (capture time and sequence from the filter; changed_at as an older agent set it, from
// pwdLastSet read when the agent processed the frame — so a spooled older change shares it).

const tenantId = "00000000-0000-0000-0000-00000000cafe";
const clientId = "00000000-0000-0000-0000-0000000a9911";
const clientSecret = `secret-${randomUUID()}`;
const canaryRoot = `Order-Canary-${randomUUID().slice(0, 8)}`;
const password = (n: string) => `${canaryRoot}-${n}!Aa1`;

const users = Array.from({ length: 6 }, (_, i) => ({
  id: `o-${i}`,
  userPrincipalName: `order${i}@contoso.example`,
  mail: `order${i}@contoso.example`,
  onPremisesImmutableId: Buffer.alloc(16, 0x40 + i).toString("base64"),
  accountEnabled: true,
}));

let log: EventLog;
let sandbox: SandboxTenantHandle;
let graph: GraphClient;
let control: ReturnType<typeof sandboxControl>;
let resolver: Processor;
let executor: Processor;
const shutdown = new AbortController();
const keys = generateRecipientKeyPair();
const recipient = loadRecipientPublicKey(keys.publicPem);
const logger = createLogger({ service: "ordering-test", destination: new Writable({ write: (_c, _e, cb) => cb() }) });

beforeAll(async () => {
  const pki = await ensureDevPki(mkdtempSync(path.join(tmpdir(), "ordering-pki-")));
  const caPem = readFileSync(pki.ca.cert, "utf8");
  sandbox = await startSandboxTenant({
    tls: { cert: readFileSync(pki.server.cert, "utf8"), key: readFileSync(pki.server.key, "utf8") },
    tenantId,
    apps: [{ clientId, clientSecret }],
    users: users as never,
    scryptCost: 1024,
  });
  control = sandboxControl(sandbox.url, caPem);
  graph = await createGraphClient({ tenantId, clientId, clientSecret, authorityHost: sandbox.url, graphBaseUrl: sandbox.url, caPem });
  log = await openEventLog(await createTestDatabase("ordering"));
  const keyPair = loadRecipientKeyPair(keys.privatePem);
  resolver = await startResolver({ log, graph, logger, matchOrder: ["immutableId", "userPrincipalName", "mail"] });
  executor = await startExecutor({
    log,
    graph,
    logger,
    keys: new Map([[keyPair.keyId, keyPair]]),
    config: executorSection.parse({ keysDir: "/unused", retryLimit: 3, backoff: { baseMs: 20, maxMs: 100 }, minPasswordLength: 4 }),
    limiter: new SlidingWindowLimiter(1000, 1000),
    requestTimeoutMs: 10_000,
    signal: shutdown.signal,
  });
});

afterAll(async () => {
  shutdown.abort();
  await resolver?.stop();
  await executor?.stop();
  graph?.close();
  await sandbox?.close();
  await log?.close();
});

const T0 = 1_795_780_800n; // 2026-11-27T12:00:00Z: in the past for the clock-skew check
const at = (seconds: bigint, nanos = 0): Timestamp => create(TimestampSchema, { seconds, nanos });

interface Capture {
  user: number;
  secret: string;
  dc: string;
  capturedAt: Timestamp;
  sequence: bigint;
  /** What an agent set changed_at to: pwdLastSet as read when it processed the frame. */
  pwdLastSet: Date;
}

async function ingest(c: Capture): Promise<string> {
  const user = users[c.user]!;
  const changeId = randomUUID();
  const message = buildPasswordChange(
    recipient,
    {
      changeId,
      accountName: user.userPrincipalName.split("@")[0]!,
      objectGuid: Buffer.from(user.onPremisesImmutableId, "base64"),
      userPrincipalName: user.userPrincipalName,
      changedAt: c.pwdLastSet,
      capturedAt: c.capturedAt,
      captureSequence: c.sequence,
      agentSequence: c.sequence,
      domainController: c.dc,
    },
    Buffer.from(c.secret),
  );
  const verdict = validateChange(message, new Set([recipient.keyId]), new Date());
  if (!verdict.ok) throw new Error(verdict.message);
  await commitChanges(log, [
    {
      change: verdict.change,
      sealedEnvelope: toBinary(SealedSecretSchema, message.sealedPassword!),
      agent: { agentId: c.dc, fingerprint256: "" },
      scope: [],
      receivedAt: new Date(),
    },
  ]);
  return changeId;
}

async function outcome(changeId: string): Promise<string> {
  return eventually(`change ${changeId} to finish`, async () => (await readStream(log.db, changeStreamId(changeId))).map((e) => e.type).find(isChangeOutcome));
}

describe("newest capture wins in Entra (issue 11, finding 2)", () => {
  it("the reviewer's scenario: newer B is set, then older A (drained late, same pwdLastSet) arrives — A is superseded, Entra keeps B", async () => {
    const pwdLastSet = new Date(Number(T0) * 1000 + 9_000); // B's pwdLastSet, read for both
    const a: Capture = { user: 0, secret: password("A"), dc: "dc01.corp.example", capturedAt: at(T0), sequence: 500n, pwdLastSet };
    const b: Capture = { user: 0, secret: password("B"), dc: "dc01.corp.example", capturedAt: at(T0 + 9n), sequence: 501n, pwdLastSet };
    const idB = await ingest(b);
    expect(await outcome(idB)).toBe("PasswordSet");
    const idA = await ingest(a);
    expect(await outcome(idA)).toBe("Superseded");
    expect((await readStream(log.db, `change-${idA}`)).find((e) => e.type === "Superseded")!.data).toMatchObject({ supersededByChangeId: idB });
    expect(await control.signIn(users[0]!.userPrincipalName, password("B"))).toBe(true);
    expect(await control.signIn(users[0]!.userPrincipalName, password("A"))).toBe(false);
  });

  it("the same user changed on two DCs 300 ns apart: the later capture wins whichever DC's change is handled first", async () => {
    const pwdLastSet = new Date(Number(T0) * 1000 + 20_000);
    // user 1: the later change (dc01) is handled first; user 2: the earlier one (dc02) is.
    for (const [user, order] of [
      [1, "later-first"],
      [2, "earlier-first"],
    ] as const) {
      const earlier: Capture = {
        user,
        secret: password(`early${user}`),
        dc: "dc02.corp.example",
        capturedAt: at(T0 + 20n, 100),
        sequence: 90_000n,
        pwdLastSet,
      };
      const later: Capture = { user, secret: password(`late${user}`), dc: "dc01.corp.example", capturedAt: at(T0 + 20n, 400), sequence: 7n, pwdLastSet };
      const [first, second] = order === "later-first" ? [later, earlier] : [earlier, later];
      const idFirst = await ingest(first);
      await outcome(idFirst);
      const idSecond = await ingest(second);
      await outcome(idSecond);
      expect(await control.signIn(users[user]!.userPrincipalName, later.secret)).toBe(true);
      expect(await control.signIn(users[user]!.userPrincipalName, earlier.secret)).toBe(false);
    }
  });

  it("two DCs with the exact same capture time: the tie is broken the same way in either order, and only one password ends in Entra", async () => {
    const pwdLastSet = new Date(Number(T0) * 1000 + 30_000);
    for (const [user, firstDc] of [
      [3, "dc01.corp.example"],
      [4, "dc02.corp.example"],
    ] as const) {
      const mk = (dc: string): Capture => ({
        user,
        secret: password(`${dc.slice(0, 4)}-${user}`),
        dc,
        capturedAt: at(T0 + 30n, 700),
        sequence: 1n,
        pwdLastSet,
      });
      const first = mk(firstDc);
      const second = mk(firstDc === "dc01.corp.example" ? "dc02.corp.example" : "dc01.corp.example");
      await outcome(await ingest(first));
      await outcome(await ingest(second));
      // The deterministic rule: equal times → the DC name that sorts last wins (ordering.ts).
      expect(await control.signIn(users[user]!.userPrincipalName, password(`dc02-${user}`))).toBe(true);
      expect(await control.signIn(users[user]!.userPrincipalName, password(`dc01-${user}`))).toBe(false);
    }
  });
});
