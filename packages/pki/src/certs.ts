import { webcrypto, randomBytes } from "node:crypto";
// @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata API loaded first.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { adminRoleUri, agentUri } from "./names.js";

// @peculiar/x509 needs a WebCrypto provider; Node's own keeps us free of extra native deps.
x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const EC_KEY = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGNING = { name: "ECDSA", hash: "SHA-256" } as const;
const DAY_MS = 24 * 60 * 60 * 1000;

/** A certificate and its private key, both PEM (key is PKCS#8). */
export interface CertAndKey {
  cert: string;
  key: string;
}

export interface Validity {
  notBefore?: Date;
  notAfter?: Date;
}

function serialNumber(): string {
  // Positive 128-bit serial: clear the top bit so DER never reads it as negative.
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString("hex");
}

function escapeDnValue(value: string): string {
  return value.replace(/([,+"\\<>;=])/g, "\\$1");
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(EC_KEY, true, ["sign", "verify"])) as unknown as CryptoKeyPair;
}

async function exportKeyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", key as unknown as webcrypto.CryptoKey));
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN PRIVATE KEY-----\n${lines.join("\n")}\n-----END PRIVATE KEY-----\n`;
}

async function importKeyPem(pem: string): Promise<CryptoKey> {
  const body = pem.replace(/-----(BEGIN|END) PRIVATE KEY-----/g, "").replace(/\s+/g, "");
  return (await webcrypto.subtle.importKey("pkcs8", Buffer.from(body, "base64"), EC_KEY, false, ["sign"])) as unknown as CryptoKey;
}

function defaultValidity(years: number): Required<Validity> {
  // Backdate a little so freshly issued certs survive small clock skew between hosts.
  const notBefore = new Date(Date.now() - 5 * 60 * 1000);
  return { notBefore, notAfter: new Date(notBefore.getTime() + years * 365 * DAY_MS) };
}

/** Creates a self-signed ECDSA P-256 certificate authority. */
export async function createCa(name: string, validity: Validity = {}): Promise<CertAndKey> {
  const keys = await generateKeys();
  const { notBefore, notAfter } = { ...defaultValidity(10), ...validity };
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `CN=${escapeDnValue(name)}`,
    notBefore,
    notAfter,
    signingAlgorithm: SIGNING,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: `${cert.toString("pem")}\n`, key: await exportKeyPem(keys.privateKey) };
}

interface LeafSpec {
  commonName: string;
  /** Extended key usages; an empty list leaves the extension out (tests of refusals only). */
  usages: x509.ExtendedKeyUsage[];
  altNames?: x509.JsonGeneralName[];
  validity: Validity;
  years: number;
}

async function issueLeaf(ca: CertAndKey, spec: LeafSpec): Promise<CertAndKey> {
  const caCert = new x509.X509Certificate(ca.cert);
  const caKey = await importKeyPem(ca.key);
  const keys = await generateKeys();
  const { notBefore, notAfter } = { ...defaultValidity(spec.years), ...spec.validity };
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
  ];
  if (spec.usages.length > 0) extensions.push(new x509.ExtendedKeyUsageExtension(spec.usages, false));
  if (spec.altNames && spec.altNames.length > 0) {
    extensions.push(new x509.SubjectAlternativeNameExtension(spec.altNames, false));
  }
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: `CN=${escapeDnValue(spec.commonName)}`,
    issuer: caCert.subject,
    notBefore,
    notAfter,
    signingAlgorithm: SIGNING,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions,
  });
  return { cert: `${cert.toString("pem")}\n`, key: await exportKeyPem(keys.privateKey) };
}

const ALWAYS_LOCAL = ["localhost", "127.0.0.1", "::1"];

function isIpAddress(name: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(name) || name.includes(":");
}

/** Server certificate for TLS (EKU serverAuth) with SANs for loopback plus `serverNames`. */
export async function issueServerCert(ca: CertAndKey, serverNames: string[] = [], validity: Validity = {}): Promise<CertAndKey> {
  const names = [...new Set([...ALWAYS_LOCAL, ...serverNames])];
  return issueLeaf(ca, {
    commonName: serverNames[0] ?? "localhost",
    usages: [x509.ExtendedKeyUsage.serverAuth],
    altNames: names.map((value) => ({ type: isIpAddress(value) ? "ip" : "dns", value })),
    validity,
    years: 2,
  });
}

export type KeyPurpose = "clientAuth" | "serverAuth";

/**
 * Client certificate for mTLS (EKU clientAuth), CN = `commonName`, optional URI SANs (roles).
 * `usages` overrides the EKUs; only tests pass it, to build the certificates services refuse.
 */
export async function issueClientCert(
  ca: CertAndKey,
  commonName: string,
  validity: Validity = {},
  options: { uris?: string[]; usages?: KeyPurpose[] } = {},
): Promise<CertAndKey> {
  const altNames = (options.uris ?? []).map((value) => ({ type: "url" as const, value }));
  const usages = (options.usages ?? ["clientAuth"]).map((u) => x509.ExtendedKeyUsage[u]);
  return issueLeaf(ca, { commonName, usages, altNames, validity, years: 2 });
}

/** Agent certificate: clientAuth EKU, CN and URI SAN naming the DC. Issue it from the agent CA. */
export async function issueAgentCert(agentCa: CertAndKey, domainController: string, validity: Validity = {}): Promise<CertAndKey> {
  return issueClientCert(agentCa, domainController, validity, { uris: [agentUri(domainController)] });
}

/** Client certificate for a human or script allowed to call the admin API. */
export async function issueAdminCert(ca: CertAndKey, name: string, validity: Validity = {}): Promise<CertAndKey> {
  return issueClientCert(ca, name, validity, { uris: [adminRoleUri(name)] });
}

const RSA_KEY = {
  name: "RSASSA-PKCS1-v1_5",
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
  hash: "SHA-256",
} as const;

/**
 * Self-signed RSA certificate for an Entra app registration's certificate credential.
 * RSA because MSAL signs client assertions only with RS256/PS256; the returned `key` is PKCS#8.
 */
export async function createAppCredentialCert(name: string, validity: Validity = {}): Promise<CertAndKey> {
  const keys = (await webcrypto.subtle.generateKey(RSA_KEY, true, ["sign", "verify"])) as unknown as CryptoKeyPair;
  const { notBefore, notAfter } = { ...defaultValidity(2), ...validity };
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `CN=${escapeDnValue(name)}`,
    notBefore,
    notAfter,
    signingAlgorithm: RSA_KEY,
    keys,
    extensions: [new x509.BasicConstraintsExtension(false, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)],
  });
  return { cert: `${cert.toString("pem")}\n`, key: await exportKeyPem(keys.privateKey) };
}
