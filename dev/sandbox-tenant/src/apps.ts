import { X509Certificate, createHash, timingSafeEqual } from "node:crypto";

/** An app registration in the sandbox tenant, as an admin would configure it in Entra. */
export interface AppRegistration {
  clientId: string;
  clientSecret?: string;
  /** PEM certificates registered as the app's certificate credentials. */
  certificates?: string[];
  /** Application permissions granted (roles claim). Defaults to User.ReadWrite.All. */
  roles?: string[];
}

export interface RegisteredCertificate {
  cert: X509Certificate;
  x5t: string;
  x5tS256: string;
}

export interface ResolvedApp {
  clientId: string;
  secretDigest?: Buffer;
  certificates: RegisteredCertificate[];
  roles: string[];
}

const sha256 = (value: string | Buffer) => createHash("sha256").update(value).digest();

export function resolveApp(app: AppRegistration): ResolvedApp {
  return {
    clientId: app.clientId,
    // Keep only a digest so the configured secret is not retained in memory as-is.
    secretDigest: app.clientSecret !== undefined ? sha256(app.clientSecret) : undefined,
    certificates: (app.certificates ?? []).map((pem) => {
      const cert = new X509Certificate(pem);
      return {
        cert,
        x5t: createHash("sha1").update(cert.raw).digest("base64url"),
        x5tS256: createHash("sha256").update(cert.raw).digest("base64url"),
      };
    }),
    roles: app.roles ?? ["User.ReadWrite.All"],
  };
}

export function secretMatches(app: ResolvedApp, presented: string): boolean {
  return app.secretDigest !== undefined && timingSafeEqual(app.secretDigest, sha256(presented));
}
