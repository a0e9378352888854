import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { buildPasswordChange, IngestStream, StreamClosedError, type IngestEndpoint } from "@pwsync/agent-link";
import { generateRecipientKeyPair, loadRecipientPublicKey } from "@pwsync/crypto";
import { openEventLog, readStream, type EventLog } from "@pwsync/eventlog";
import { createLogger } from "@pwsync/log";
import { createCa, ensureDevPki, issueAgentCert } from "@pwsync/pki";
import { createTestDatabase } from "@pwsync/testkit";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startIngest } from "./server.js";

const canary = "Ingest-Canary-5519#x";
let log: EventLog;
let server: Awaited<ReturnType<typeof startIngest>>;
let endpoint: IngestEndpoint;
let pkiDir: string;
let recipient: ReturnType<typeof loadRecipientPublicKey>;
const logLines: string[] = [];

beforeAll(async () => {
  pkiDir = mkdtempSync(path.join(tmpdir(), "ingest-pki-"));
  const pki = await ensureDevPki(pkiDir, { agents: ["dc01"] });
  const keys = generateRecipientKeyPair();
  recipient = loadRecipientPublicKey(keys.publicPem);
  log = await openEventLog(await createTestDatabase("ingest"));
  const logger = createLogger({
    service: "ingest",
    destination: new Writable({
      write(chunk, _e, cb) {
        logLines.push(String(chunk));
        cb();
      },
    }),
  });
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
        agentScopes: { dc01: ["contoso.example"] },
        agentRateLimit: { perSecond: 10_000, burst: 10_000 },
      },
    },
    log,
    logger,
  );
  endpoint = {
    address: `127.0.0.1:${server.port}`,
    caPem: readFileSync(pki.ca.cert),
    certPem: readFileSync(pki.agents.dc01!.cert),
    keyPem: readFileSync(pki.agents.dc01!.key),
  };
});

afterAll(async () => {
  await server?.shutdown(100);
  await log?.close();
});

function change(overrides: Partial<Parameters<typeof buildPasswordChange>[1]> = {}) {
  return buildPasswordChange(
    recipient,
    {
      changeId: randomUUID(),
      accountName: "alice",
      userPrincipalName: "alice@contoso.example",
      objectGuid: new Uint8Array(16).fill(7),
      changedAt: new Date(),
      domainController: "dc01.contoso.example",
      ...overrides,
    },
    Buffer.from(canary),
  );
}

async function countEvents(): Promise<number> {
  const r = await sql<{ n: string }>`SELECT count(*) AS n FROM events WHERE stream_id LIKE 'change-%'`.execute(log.db);
  return Number(r.rows[0]!.n);
}

async function expectRefused(stream: IngestStream, message: ReturnType<typeof change>, code: grpc.status, detail?: RegExp) {
  const error = await stream.send(message).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(StreamClosedError);
  expect(grpc.status[(error as StreamClosedError).code]).toBe(grpc.status[code]);
  if (detail) expect((error as StreamClosedError).details).toMatch(detail);
  // The agent learns which change to quarantine from structured metadata, not from the text.
  if (code === grpc.status.INVALID_ARGUMENT && /^[0-9a-f-]{36}$/.test(message.changeId))
    expect((error as StreamClosedError).refusedChangeId).toBe(message.changeId);
  await stream.close().catch(() => {});
}

describe("ingest", () => {
  it("acks a change only once ChangeCaptured and its sealed secret are committed", async () => {
    const stream = new IngestStream(endpoint);
    const message = change();
    const ack = await stream.send(message);
    expect(ack).toMatchObject({ changeId: message.changeId, status: "committed" });
    const events = await readStream(log.db, `change-${message.changeId}`);
    expect(events.map((e) => e.type)).toEqual(["ChangeCaptured"]);
    expect(events[0]!.globalPosition).toBe(ack.globalPosition);
    expect(events[0]!.data).toMatchObject({ agentId: "dc01", accountName: "alice", immutableId: Buffer.alloc(16, 7).toString("base64") });
    expect(events[0]!.metadata).toMatchObject({ agentId: "dc01", actor: "ingest" });
    const secret = await log.db.selectFrom("sealed_secrets").selectAll().where("change_id", "=", message.changeId).executeTakeFirstOrThrow();
    expect(secret.envelope.includes(Buffer.from(canary))).toBe(false);
    await stream.close();
  });

  it("treats a re-sent change (ack lost) as a duplicate and stores it once", async () => {
    const message = change();
    const first = new IngestStream(endpoint);
    const ack1 = await first.send(message);
    await first.close();
    const second = new IngestStream(endpoint);
    const ack2 = await second.send(message);
    await second.close();
    expect(ack2).toEqual({ changeId: message.changeId, status: "duplicate", globalPosition: ack1.globalPosition });
    expect(await readStream(log.db, `change-${message.changeId}`)).toHaveLength(1);
    const secrets = await log.db.selectFrom("sealed_secrets").select("change_id").where("change_id", "=", message.changeId).execute();
    expect(secrets).toHaveLength(1);
  });

  it("commits many changes on one stream in order", async () => {
    const stream = new IngestStream(endpoint);
    const messages = Array.from({ length: 300 }, (_, i) => change({ agentSequence: BigInt(i) }));
    const acks = await Promise.all(messages.map((m) => stream.send(m)));
    expect(acks.every((a) => a.status === "committed")).toBe(true);
    const positions = acks.map((a) => a.globalPosition);
    expect([...positions].sort((a, b) => (a < b ? -1 : 1))).toEqual(positions);
    await stream.close();
  });

  describe("refuses callers without a valid client certificate with UNAUTHENTICATED, storing nothing", () => {
    it.each([
      ["no certificate", async () => ({ certPem: undefined, keyPem: undefined })],
      [
        "a certificate from an unknown CA",
        async () => {
          const rogue = await createCa("rogue");
          const cert = await issueAgentCert(rogue, "dc01");
          return { certPem: cert.cert, keyPem: cert.key };
        },
      ],
      [
        "an expired certificate",
        async () => {
          const ca = { cert: readFileSync(path.join(pkiDir, "agent-ca.pem"), "utf8"), key: readFileSync(path.join(pkiDir, "agent-ca.key"), "utf8") };
          const cert = await issueAgentCert(ca, "dc01", { notBefore: new Date(Date.now() - 10 * 86400_000), notAfter: new Date(Date.now() - 86400_000) });
          return { certPem: cert.cert, keyPem: cert.key };
        },
      ],
    ])("%s", async (_name, credentials) => {
      const before = await countEvents();
      const creds = await credentials();
      const stream = new IngestStream({ ...endpoint, ...creds } as IngestEndpoint);
      await expectRefused(stream, change(), grpc.status.UNAUTHENTICATED, /client certificate required/);
      expect(await countEvents()).toBe(before);
    });
  });

  it("answers a field error with INVALID_ARGUMENT naming the change and field, after committing the valid ones before it", async () => {
    const stream = new IngestStream(endpoint);
    const good = change();
    const goodAck = stream.send(good);
    const bad = change({ accountName: "" });
    await expectRefused(stream, bad, grpc.status.INVALID_ARGUMENT, new RegExp(`change ${bad.changeId}: account_name is required`));
    expect((await goodAck).status).toBe("committed");
    expect(await readStream(log.db, `change-${bad.changeId}`)).toHaveLength(0);
  });

  it("answers a change sealed to an unknown key with FAILED_PRECONDITION", async () => {
    const other = loadRecipientPublicKey(generateRecipientKeyPair().publicPem);
    const message = buildPasswordChange(
      other,
      { changeId: randomUUID(), accountName: "bob", mail: "bob@contoso.example", changedAt: new Date(), domainController: "dc01" },
      Buffer.from(canary),
    );
    await expectRefused(new IngestStream(endpoint), message, grpc.status.FAILED_PRECONDITION, /update the agent's sealing public key/);
    expect(await readStream(log.db, `change-${message.changeId}`)).toHaveLength(0);
  });

  it("answers an oversized message with RESOURCE_EXHAUSTED and stores nothing", async () => {
    const before = await countEvents();
    const message = change({ accountName: "x".repeat(200) });
    message.sealedPassword!.ciphertext = new Uint8Array(32 * 1024);
    await expectRefused(new IngestStream(endpoint), message, grpc.status.RESOURCE_EXHAUSTED);
    expect(await countEvents()).toBe(before);
  });

  it("answers bytes that are not a protobuf message with INVALID_ARGUMENT and stores nothing", async () => {
    const before = await countEvents();
    const client = new grpc.Client(
      endpoint.address,
      grpc.credentials.createSsl(Buffer.from(endpoint.caPem), Buffer.from(endpoint.keyPem), Buffer.from(endpoint.certPem)),
    );
    // Raw bytes on the wire, past any serializer that would refuse to send them.
    const asIs = (bytes: Buffer) => bytes;
    const call = client.makeBidiStreamRequest("/pwsync.v1.AgentIngestService/StreamChanges", asIs, asIs);
    const status = new Promise<grpc.ServiceError>((resolve) => call.on("error", resolve));
    call.on("data", () => {});
    // Field 1, wire type 2 (length-delimited) claiming 100 bytes but carrying 3.
    call.write(Buffer.from([0x0a, 0x64, 0x01, 0x02, 0x03]));
    const error = await status;
    expect(grpc.status[error.code]).toBe("INVALID_ARGUMENT");
    expect(error.details).toMatch(/malformed pwsync.v1.StreamChangesRequest/);
    client.close();
    expect(await countEvents()).toBe(before);
  });

  it("never writes the password to its log", () => {
    expect(logLines.length).toBeGreaterThan(0);
    expect(logLines.join("")).not.toContain(canary);
  });
});
