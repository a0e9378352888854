import { constants, verify } from "node:crypto";
import type { ResolvedApp } from "./apps.js";

export type AssertionResult = { ok: true } | { ok: false; code: number; description: string };

const fail = (code: number, description: string): AssertionResult => ({ ok: false, code, description });

function decodeJsonPart(part: string | undefined): Record<string, unknown> | undefined {
  if (!part) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
    return value && typeof value === "object" ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const CLOCK_SKEW_SECONDS = 300;

/**
 * Verifies a certificate client assertion (RFC 7523) the way Entra does for confidential clients:
 * the thumbprint in the header must name a certificate registered on the app, the signature must
 * verify with that certificate's key, and aud / iss / sub / exp / nbf must hold.
 */
export function verifyClientAssertion(assertion: string, app: ResolvedApp, acceptedAudiences: string[], nowSeconds: number): AssertionResult {
  const [headerPart, payloadPart, signaturePart] = assertion.split(".");
  const header = decodeJsonPart(headerPart);
  const payload = decodeJsonPart(payloadPart);
  if (!header || !payload || !signaturePart) return fail(50027, "Invalid JWT token. Token format not valid.");

  const x5tS256 = typeof header["x5t#S256"] === "string" ? header["x5t#S256"] : undefined;
  const x5t = typeof header.x5t === "string" ? header.x5t : undefined;
  const registered = app.certificates.find(
    (candidate) => (x5tS256 !== undefined && candidate.x5tS256 === x5tS256) || (x5t !== undefined && candidate.x5t === x5t),
  );
  if (!registered) {
    return fail(
      700027,
      `The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '${x5tS256 ?? x5t ?? ""}']`,
    );
  }

  const signed = Buffer.from(`${headerPart}.${payloadPart}`);
  const signature = Buffer.from(signaturePart, "base64url");
  const key = registered.cert.publicKey;
  let valid = false;
  if (header.alg === "RS256") {
    valid = verify("sha256", signed, key, signature);
  } else if (header.alg === "PS256") {
    valid = verify("sha256", signed, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, signature);
  } else {
    return fail(5002738, `Invalid JWT token. '${String(header.alg)}' is not a supported signature algorithm.`);
  }
  if (!valid) return fail(700027, "Client assertion failed signature validation.");

  if (payload.iss !== app.clientId || payload.sub !== app.clientId) {
    return fail(700021, "Client assertion application identifier doesn't match 'client_id' parameter.");
  }
  const aud = typeof payload.aud === "string" ? payload.aud.toLowerCase() : "";
  if (!acceptedAudiences.some((accepted) => accepted.toLowerCase() === aud)) {
    return fail(700212, `No matching federated identity record found for presented assertion audience '${String(payload.aud)}'.`);
  }
  const exp = typeof payload.exp === "number" ? payload.exp : 0;
  const nbf = typeof payload.nbf === "number" ? payload.nbf : 0;
  if (exp + CLOCK_SKEW_SECONDS < nowSeconds || nbf - CLOCK_SKEW_SECONDS > nowSeconds) {
    return fail(700024, "Client assertion is not within its valid time range.");
  }
  return { ok: true };
}
