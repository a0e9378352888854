import { X509Certificate, createPrivateKey, createPublicKey } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createCa, issueClientCert, issueServerCert } from "./index.js";

describe("certificate issuance", () => {
  it("issues a server cert that verifies against its CA and carries loopback SANs", async () => {
    const ca = await createCa("test CA");
    const server = await issueServerCert(ca, ["pwsync.example"]);
    const caCert = new X509Certificate(ca.cert);
    const cert = new X509Certificate(server.cert);
    expect(caCert.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.subjectAltName).toContain("DNS:localhost");
    expect(cert.subjectAltName).toContain("DNS:pwsync.example");
    expect(cert.subjectAltName).toContain("IP Address:127.0.0.1");
    expect(cert.checkIP("::1")).toBe("::1");
    expect(cert.keyUsage).toContain("1.3.6.1.5.5.7.3.1");
  });

  it("issues a client cert with the agent's CN and clientAuth usage whose key matches", async () => {
    const ca = await createCa("test CA");
    const client = await issueClientCert(ca, "dc01");
    const cert = new X509Certificate(client.cert);
    expect(cert.subject).toBe("CN=dc01");
    expect(cert.keyUsage).toContain("1.3.6.1.5.5.7.3.2");
    expect(cert.checkPrivateKey(createPrivateKey(client.key))).toBe(true);
    expect(createPublicKey(client.key).asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
  });

  it("can issue an already expired client cert", async () => {
    const ca = await createCa("test CA");
    const expired = await issueClientCert(ca, "old-dc", {
      notBefore: new Date("2020-01-01T00:00:00Z"),
      notAfter: new Date("2020-02-01T00:00:00Z"),
    });
    const cert = new X509Certificate(expired.cert);
    expect(new Date(cert.validTo).getTime()).toBeLessThan(Date.now());
    expect(cert.verify(new X509Certificate(ca.cert).publicKey)).toBe(true);
  });

  it("a cert from an unknown CA does not verify against ours", async () => {
    const ours = await createCa("ours");
    const rogueCa = await createCa("rogue");
    const rogue = new X509Certificate((await issueClientCert(rogueCa, "dc01")).cert);
    const oursCert = new X509Certificate(ours.cert);
    expect(rogue.verify(oursCert.publicKey)).toBe(false);
    expect(rogue.checkIssued(oursCert)).toBe(false);
  });
});

describe("app credential certificate", () => {
  it("is a self-signed RSA cert whose key matches (MSAL needs RSA for client assertions)", async () => {
    const { createAppCredentialCert } = await import("./index.js");
    const app = await createAppCredentialCert("pwsync app");
    const cert = new X509Certificate(app.cert);
    expect(cert.publicKey.asymmetricKeyType).toBe("rsa");
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.checkPrivateKey(createPrivateKey(app.key))).toBe(true);
  });
});
