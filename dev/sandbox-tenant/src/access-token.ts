import { createHmac, randomUUID, timingSafeEqual } from "node:crypto";

export const GRAPH_AUDIENCE = "https://graph.microsoft.com";

export interface AccessTokenClaims {
  aud: string;
  iss: string;
  tid: string;
  appid: string;
  roles: string[];
  iat: number;
  nbf: number;
  exp: number;
  uti: string;
}

/** HS256 JWTs keyed by the sandbox: the shape of a Graph token, verifiable only by this sandbox. */
export class AccessTokens {
  constructor(
    private readonly key: Buffer,
    private readonly tenantId: string,
    private readonly lifetimeSeconds = 3599,
  ) {}

  get lifetime(): number {
    return this.lifetimeSeconds;
  }

  issue(appId: string, roles: string[], nowSeconds: number): string {
    const claims: AccessTokenClaims = {
      aud: GRAPH_AUDIENCE,
      iss: `https://sts.windows.net/${this.tenantId}/`,
      tid: this.tenantId,
      appid: appId,
      roles,
      iat: nowSeconds,
      nbf: nowSeconds,
      exp: nowSeconds + this.lifetimeSeconds,
      uti: randomUUID(),
    };
    const header = Buffer.from(JSON.stringify({ typ: "JWT", alg: "HS256" })).toString("base64url");
    const body = Buffer.from(JSON.stringify(claims)).toString("base64url");
    return `${header}.${body}.${this.sign(`${header}.${body}`)}`;
  }

  /** Returns the claims, or the reason the token is refused. */
  verify(token: string, nowSeconds: number): { ok: true; claims: AccessTokenClaims } | { ok: false; reason: "invalid" | "expired" } {
    const [header, body, signature] = token.split(".");
    if (!header || !body || !signature) return { ok: false, reason: "invalid" };
    const expected = Buffer.from(this.sign(`${header}.${body}`));
    const actual = Buffer.from(signature);
    if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) return { ok: false, reason: "invalid" };
    let claims: AccessTokenClaims;
    try {
      claims = JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as AccessTokenClaims;
    } catch {
      return { ok: false, reason: "invalid" };
    }
    if (claims.aud !== GRAPH_AUDIENCE || claims.tid !== this.tenantId) return { ok: false, reason: "invalid" };
    if (claims.exp <= nowSeconds) return { ok: false, reason: "expired" };
    return { ok: true, claims };
  }

  private sign(data: string): string {
    return createHmac("sha256", this.key).update(data).digest("base64url");
  }
}
