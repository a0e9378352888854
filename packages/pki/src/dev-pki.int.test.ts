import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCa, ensureDevPki, issueClientCert, type DevPkiPaths } from "./index.js";

let dir: string;
let pki: DevPkiPaths;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "pwsync-pki-"));
  pki = await ensureDevPki(dir, { agents: ["dc01", "dc02"], serverNames: ["ingest.local"] });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const read = (path: string) => readFile(path, "utf8");

describe("ensureDevPki", () => {
  it("writes a server CA and server cert, an agent CA and agent certs naming their DC, keys 0600", async () => {
    const ca = new X509Certificate(await read(pki.ca.cert));
    const agentCa = new X509Certificate(await read(pki.agentCa.cert));
    const server = new X509Certificate(await read(pki.server.cert));
    expect(server.checkIssued(ca)).toBe(true);
    expect(server.verify(ca.publicKey)).toBe(true);
    expect(server.subjectAltName).toContain("DNS:ingest.local");
    for (const name of ["dc01", "dc02"]) {
      const agent = new X509Certificate(await read(pki.agents[name]!.cert));
      expect(agent.subject).toBe(`CN=${name}`);
      expect(agent.subjectAltName).toBe(`URI:spiffe://pwsync/agent/${name}`);
      expect(agent.keyUsage).toEqual(["1.3.6.1.5.5.7.3.2"]);
      expect(agent.verify(agentCa.publicKey)).toBe(true);
      // One CA per role: the server CA never vouches for an agent.
      expect(agent.verify(ca.publicKey)).toBe(false);
      expect((await stat(pki.agents[name]!.key)).mode & 0o777).toBe(0o600);
    }
    expect((await stat(pki.ca.key)).mode & 0o777).toBe(0o600);
    expect((await stat(pki.server.key)).mode & 0o777).toBe(0o600);
  });

  it("is idempotent: a second call keeps existing material and only adds new agents", async () => {
    const before = await read(pki.ca.cert);
    const serverBefore = await read(pki.server.cert);
    const again = await ensureDevPki(dir, { agents: ["dc01", "dc03"] });
    expect(await read(again.ca.cert)).toBe(before);
    expect(await read(again.server.cert)).toBe(serverBefore);
    const dc03 = new X509Certificate(await read(again.agents.dc03!.cert));
    expect(dc03.checkIssued(new X509Certificate(await read(again.agentCa.cert)))).toBe(true);
  });

  it("makes CAs that conform to RFC 5280: basicConstraints CA:TRUE (critical), keyCertSign, distinct subjects", async () => {
    const x509 = await import("@peculiar/x509");
    const subjects = new Set<string>();
    for (const file of [pki.ca.cert, pki.agentCa.cert, pki.adminCa.cert]) {
      const cert = new x509.X509Certificate(await read(file));
      const basic = cert.getExtension(x509.BasicConstraintsExtension);
      expect(basic?.ca).toBe(true);
      expect(basic?.critical).toBe(true);
      const usage = cert.getExtension(x509.KeyUsagesExtension);
      expect(usage!.usages & x509.KeyUsageFlags.keyCertSign).toBeTruthy();
      expect(usage?.critical).toBe(true);
      expect(cert.getExtension(x509.SubjectKeyIdentifierExtension)).toBeTruthy();
      subjects.add(cert.subject);
    }
    expect(subjects.size).toBe(3);
    const server = new x509.X509Certificate(await read(pki.server.cert));
    expect(server.getExtension(x509.BasicConstraintsExtension)?.ca).toBe(false);
    expect(server.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([x509.ExtendedKeyUsage.serverAuth]);
    expect(server.getExtension(x509.AuthorityKeyIdentifierExtension)).toBeTruthy();
  });

  it("rejects agent names that would escape the agents folder", async () => {
    await expect(ensureDevPki(dir, { agents: ["../evil"] })).rejects.toThrow(/invalid agent name/);
  });
});

describe("mTLS with the dev PKI", () => {
  let server: tls.Server;
  let port: number;

  beforeAll(async () => {
    server = tls.createServer({
      cert: await read(pki.server.cert),
      key: await read(pki.server.key),
      ca: await read(pki.agentCa.cert),
      requestCert: true,
      rejectUnauthorized: true,
    });
    server.on("secureConnection", (socket) => socket.end(`hello ${socket.getPeerCertificate().subject.CN}`));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  function connect(cert: string, key: string): Promise<string> {
    return new Promise((resolve, reject) => {
      read(pki.ca.cert).then((ca) => {
        const socket = tls.connect({ host: "127.0.0.1", port, servername: "localhost", ca, cert, key });
        let data = "";
        socket.on("data", (chunk) => (data += chunk));
        socket.on("end", () => (data ? resolve(data) : reject(new Error("closed without data"))));
        socket.on("error", reject);
      }, reject);
    });
  }

  it("accepts an agent cert issued by the agent CA", async () => {
    const reply = await connect(await read(pki.agents.dc01!.cert), await read(pki.agents.dc01!.key));
    expect(reply).toBe("hello dc01");
  });

  it("refuses a client cert signed by an unknown CA", async () => {
    const rogue = await issueClientCert(await createCa("rogue"), "dc01");
    await expect(connect(rogue.cert, rogue.key)).rejects.toThrow();
  });

  it("refuses an expired client cert from the right CA", async () => {
    const ca = { cert: await read(pki.agentCa.cert), key: await read(pki.agentCa.key) };
    const expired = await issueClientCert(ca, "dc01", {
      notBefore: new Date("2020-01-01T00:00:00Z"),
      notAfter: new Date("2020-02-01T00:00:00Z"),
    });
    await expect(connect(expired.cert, expired.key)).rejects.toThrow();
  });
});
