// Adversarial tests of ingest's trust boundary (issue 10), against a real ingest server with
// real mTLS and a real Postgres: each attack is one test, and each failed on the code before.
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { buildPasswordChange, IngestStream, StreamClosedError, type IngestEndpoint } from "@pwsync/agent-link";
import { generateRecipientKeyPair, loadRecipientPublicKey } from "@pwsync/crypto";
import { appendToStream, openEventLog, readStream, type EventLog } from "@pwsync/eventlog";
import { createLogger } from "@pwsync/log";
import {
  AGENT_REVOCATIONS_STREAM,
  ensureDevPki,
  issueAgentCert,
  issueClientCert,
  adminRoleUri,
  agentUri,
  type CertAndKey,
  type DevPkiPaths,
} from "@pwsync/pki";
import { newEvent } from "@pwsync/proto";
import { createTestDatabase, eventually } from "@pwsync/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { INGEST_AUDIT_STREAM } from "./audit.js";
import { startIngest } from "./server.js";

const canary = "Trust-Canary-8812#q";
let log: EventLog;
let server: Awaited<ReturnType<typeof startIngest>>;
let pki: DevPkiPaths;
let agentCa: CertAndKey;
let recipient: ReturnType<typeof loadRecipientPublicKey>;
const logLines: string[] = [];

beforeAll(async () => {
  pki = await ensureDevPki(mkdtempSync(path.join(tmpdir(), "trust-pki-")), { agents: ["dc01", "dc02"], admins: ["alice"] });
  agentCa = { cert: readFileSync(pki.agentCa.cert, "utf8"), key: readFileSync(pki.agentCa.key, "utf8") };
  const keys = generateRecipientKeyPair();
  recipient = loadRecipientPublicKey(keys.publicPem);
  log = await openEventLog(await createTestDatabase("trust"));
  const logger = createLogger({ service: "ingest", destination: new Writable({ write: (chunk, _e, cb) => (logLines.push(String(chunk)), cb()) }) });
  server = await startIngest(
    {
      database: { url: log.connectionString },
      ingest: {
        host: "127.0.0.1",
        port: 0,
        tls: { caFile: pki.agentCa.cert, certFile: pki.server.cert, keyFile: pki.server.key },
        maxMessageBytes: 16 * 1024,
        acceptedKeyIds: [keys.keyId],
        maxBatch: 64,
        agentScopes: { dc01: ["contoso.example"], dc02: ["contoso.example"], "dc-flood": ["contoso.example"], "dc-revoked": ["contoso.example"] },
        maxClockSkewSeconds: 60,
        revocationPollMs: 200,
        agentRateLimit: { perSecond: 50, burst: 20 },
        maxInFlightPerStream: 16,
      },
    },
    log,
    logger,
  );
});

afterAll(async () => {
  await server?.shutdown(100);
  await log?.close();
});

const endpointFor = (pair: { cert: string; key: string }): IngestEndpoint => ({
  address: `127.0.0.1:${server.port}`,
  caPem: readFileSync(pki.ca.cert),
  certPem: pair.cert,
  keyPem: pair.key,
});
const filePair = (paths: { cert: string; key: string }) => ({ cert: readFileSync(paths.cert, "utf8"), key: readFileSync(paths.key, "utf8") });

function change(overrides: Partial<Parameters<typeof buildPasswordChange>[1]> = {}) {
  return buildPasswordChange(
    recipient,
    { changeId: randomUUID(), accountName: "ceo", userPrincipalName: "ceo@contoso.example", changedAt: new Date(), domainController: "dc01", ...overrides },
    Buffer.from(canary),
  );
}

async function refusal(endpoint: IngestEndpoint, message = change()): Promise<StreamClosedError> {
  const stream = new IngestStream(endpoint);
  const error = await stream.send(message).then(
    (ack) => new Error(`accepted: ${JSON.stringify({ ...ack, globalPosition: String(ack.globalPosition) })}`),
    (err: unknown) => err,
  );
  await stream.close().catch(() => {});
  expect(error).toBeInstanceOf(StreamClosedError);
  expect(await readStream(log.db, `change-${message.changeId}`)).toEqual([]);
  return error as StreamClosedError;
}

const audit = async () => (await readStream(log.db, INGEST_AUDIT_STREAM)).map((e) => e.data as Record<string, string>);

describe("agent identity", () => {
  it("an admin certificate cannot open StreamChanges (ingest trusts only the agent CA), and the attempt is audited", async () => {
    const before = (await audit()).length;
    const error = await refusal(endpointFor(filePair(pki.admins.alice!)));
    expect(grpc.status[error.code]).toBe("UNAUTHENTICATED");
    expect(error.details).toMatch(/client certificate required/);
    expect((await audit()).slice(before)).toEqual([
      expect.objectContaining({ code: "UNAUTHENTICATED", method: "/pwsync.v1.AgentIngestService/StreamChanges" }),
    ]);
  });

  it("even an admin-role certificate mis-issued by the agent CA is no agent: PERMISSION_DENIED, audited with its name", async () => {
    const misissued = await issueClientCert(agentCa, "alice", {}, { uris: [adminRoleUri("alice")] });
    const error = await refusal(endpointFor(misissued));
    expect(grpc.status[error.code]).toBe("PERMISSION_DENIED");
    expect(error.details).toMatch(/not an agent certificate: an admin certificate/);
    expect((await audit()).at(-1)).toMatchObject({
      code: "PERMISSION_DENIED",
      subject: "alice",
      certificateFingerprint: expect.stringMatching(/^[0-9A-F:]{95}$/),
    });
  });

  it("a certificate without extended key usage (CN mallory-agent) is refused with PERMISSION_DENIED, audited", async () => {
    const mallory = await issueClientCert(agentCa, "mallory-agent", {}, { usages: [] });
    const error = await refusal(endpointFor(mallory));
    expect(grpc.status[error.code]).toBe("PERMISSION_DENIED");
    expect(error.details).toMatch(/no extended key usage/);
    expect((await audit()).at(-1)).toMatchObject({ code: "PERMISSION_DENIED", subject: "mallory-agent" });
  });

  it("a clientAuth certificate from the agent CA without an agent URI SAN is refused", async () => {
    const cnOnly = await issueClientCert(agentCa, "dc01");
    const error = await refusal(endpointFor(cnOnly));
    expect(grpc.status[error.code]).toBe("PERMISSION_DENIED");
    expect(error.details).toMatch(/no agent URI SAN/);
  });

  it("a serverAuth-only certificate from the agent CA is refused", async () => {
    const serverOnly = await issueClientCert(agentCa, "dc01", {}, { uris: [agentUri("dc01")], usages: ["serverAuth"] });
    const error = await refusal(endpointFor(serverOnly));
    expect(["UNAUTHENTICATED", "PERMISSION_DENIED"]).toContain(grpc.status[error.code]);
  });

  it("the DC comes from the certificate: dc01's certificate cannot commit a change 'from' dc02", async () => {
    const stream = new IngestStream(endpointFor(filePair(pki.agents.dc01!)));
    const message = change({ domainController: "dc02.corp.example" });
    expect((await stream.send(message)).status).toBe("committed");
    await stream.close();
    const [captured] = await readStream(log.db, `change-${message.changeId}`);
    expect(captured!.data).toMatchObject({ agentId: "dc01", domainController: "dc01", scopeUpnSuffixes: ["contoso.example"] });
    expect(captured!.metadata).toMatchObject({ agentId: "dc01" });
  });
});

describe("time sanity", () => {
  it("a changed_at 4 minutes ahead (beyond the configured 60 s skew) is refused with INVALID_ARGUMENT", async () => {
    const error = await refusal(endpointFor(filePair(pki.agents.dc01!)), change({ changedAt: new Date(Date.now() + 4 * 60_000) }));
    expect(grpc.status[error.code]).toBe("INVALID_ARGUMENT");
    expect(error.details).toMatch(/changed_at .* is more than 60 s ahead/);
  });
});

describe("per-agent scope", () => {
  it("a change naming a user outside the agent's domains is recorded as ChangeRefused, acked as refused, and no secret is kept", async () => {
    const stream = new IngestStream(endpointFor(filePair(pki.agents.dc01!)));
    const message = change({ userPrincipalName: "ceo@fabrikam.example" });
    expect((await stream.send(message)).status).toBe("refused");
    const inScope = change();
    expect((await stream.send(inScope)).status).toBe("committed");
    await stream.close();
    const events = await readStream(log.db, `change-${message.changeId}`);
    expect(events.map((e) => e.type)).toEqual(["ChangeRefused"]);
    expect(events[0]!.data).toMatchObject({ agentId: "dc01", reason: "CHANGE_REFUSAL_REASON_OUT_OF_SCOPE", userPrincipalName: "ceo@fabrikam.example" });
    expect(await log.db.selectFrom("sealed_secrets").select("change_id").where("change_id", "=", message.changeId).execute()).toEqual([]);
    expect(logLines.some((l) => l.includes(message.changeId) && l.includes("ALERT"))).toBe(true);
  });

  it("an agent with no configured scope changes nobody's password", async () => {
    const stranger = await issueAgentCert(agentCa, "dc99");
    const stream = new IngestStream(endpointFor(stranger));
    const message = change();
    expect((await stream.send(message)).status).toBe("refused");
    await stream.close();
    expect((await readStream(log.db, `change-${message.changeId}`))[0]!.data).toMatchObject({ reason: "CHANGE_REFUSAL_REASON_NO_SCOPE" });
  });
});

describe("revocation", () => {
  it("revoking a certificate ends its open stream within seconds and refuses it from then on, without a restart", async () => {
    const revokedCert = await issueAgentCert(agentCa, "dc-revoked");
    const stream = new IngestStream(endpointFor(revokedCert));
    expect((await stream.send(change())).status).toBe("committed");
    const fingerprint = new (await import("node:crypto")).X509Certificate(revokedCert.cert).fingerprint256;
    await appendToStream(
      log.db,
      AGENT_REVOCATIONS_STREAM,
      [{ ...newEvent("AgentCertificateRevoked", { certificateFingerprint: fingerprint, revokedBy: "test", reason: "stolen" }), metadata: { actor: "admin" } }],
      { expectedVersion: "any" },
    );
    // Probe the open stream with further changes until ingest has ended it.
    const ended = await new Promise<unknown>((resolve) => {
      const poll = setInterval(() => {
        const pending = stream.send(change()).then(
          () => undefined,
          (err: unknown) => err,
        );
        void pending.then((err) => {
          if (err) {
            clearInterval(poll);
            resolve(err);
          }
        });
      }, 300);
    });
    expect(ended).toBeInstanceOf(StreamClosedError);
    expect(grpc.status[(ended as StreamClosedError).code]).toBe("PERMISSION_DENIED");
    expect((ended as StreamClosedError).details).toMatch(/revoked/);
    const again = await refusal(endpointFor(revokedCert));
    expect(grpc.status[again.code]).toBe("PERMISSION_DENIED");
    expect((await audit()).at(-1)).toMatchObject({ detail: "certificate revoked", certificateFingerprint: fingerprint });
  });
});

describe("fairness", () => {
  it("a flooding agent is held to its rate by flow control, and a normal agent's change commits while the flood is still queued on the flooder's side", async () => {
    const flooder = await issueAgentCert(agentCa, "dc-flood");
    const flood = new IngestStream(endpointFor(flooder));
    let floodAcked = 0;
    const floodAcks = Array.from({ length: 400 }, () => flood.send(change({ accountName: "flood" })).then(() => floodAcked++));
    // Let the flood get going, then a normal agent sends one change.
    while (floodAcked < 20) await new Promise((resolve) => setTimeout(resolve, 20));
    const normal = new IngestStream(endpointFor(filePair(pki.agents.dc02!)));
    const ack = await normal.send(change({ domainController: "dc02" }));
    const floodAckedWhenNormalCommitted = floodAcked;
    await normal.close();
    expect(ack.status).toBe("committed");
    // The bound: the normal agent never waits behind the flooder's backlog; at most the
    // flooder's burst plus what its rate allowed meanwhile is ahead of it, far from all 400.
    expect(floodAckedWhenNormalCommitted).toBeLessThan(400);
    await Promise.all(floodAcks);
    await flood.close();
    expect(floodAcked).toBe(400);
  }, 60_000);
});

describe("sealing key epochs", () => {
  it("accepts a key the reset-executor announced within a poll, tells agents the current key in heartbeats, and refuses a key past its overlap", async () => {
    const { timestampFromDate } = await import("@bufbuild/protobuf/wkt");
    const { createClient, mtlsChannelCredentials } = await import("@pwsync/grpc");
    const { AgentIngestService } = await import("@pwsync/proto");
    const first = generateRecipientKeyPair();
    const second = generateRecipientKeyPair();
    const append = (events: ReturnType<typeof newEvent>[]) =>
      appendToStream(
        log.db,
        "sealing-keys",
        events.map((e) => ({ ...e, metadata: { actor: "reset-executor" } })),
        { expectedVersion: "any" },
      );
    const sendSealedTo = async (pem: string) => {
      const stream = new IngestStream(endpointFor(filePair(pki.agents.dc01!)));
      const message = buildPasswordChange(
        loadRecipientPublicKey(pem),
        { changeId: randomUUID(), accountName: "ceo", userPrincipalName: "ceo@contoso.example", changedAt: new Date(), domainController: "dc01" },
        Buffer.from(canary),
      );
      const outcome = await stream.send(message).then(
        (ack) => ack.status,
        (err: StreamClosedError) => grpc.status[err.code],
      );
      await stream.close().catch(() => {});
      return outcome;
    };
    expect(await sendSealedTo(first.publicPem)).toBe("FAILED_PRECONDITION");
    await append([newEvent("SealingKeyCreated", { keyId: first.keyId, publicKeyPem: first.publicPem, epoch: 1 })]);
    await eventually("the announced key to be accepted", async () => (await sendSealedTo(first.publicPem)) === "committed");

    const channel = new grpc.Client(`127.0.0.1:${server.port}`, mtlsChannelCredentials({ ca: readFileSync(pki.ca.cert), ...filePair(pki.agents.dc01!) }));
    const beat = await createClient(AgentIngestService, channel).heartbeat({ agentVersion: "t" });
    channel.close();
    expect(beat.sealingPublicKeyPem).toBe(first.publicPem);

    await append([
      newEvent("SealingKeyRetired", { keyId: first.keyId, epoch: 1, acceptUntil: timestampFromDate(new Date(Date.now() - 1000)) }),
      newEvent("SealingKeyCreated", { keyId: second.keyId, publicKeyPem: second.publicPem, epoch: 2 }),
    ]);
    await eventually("the retired key to be refused", async () => (await sendSealedTo(first.publicPem)) === "FAILED_PRECONDITION");
    expect(await sendSealedTo(second.publicPem)).toBe("committed");
  });
});

it("never writes the password to its log", () => {
  expect(logLines.join("")).not.toContain(canary);
});
