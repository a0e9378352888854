import { GraphError } from "@microsoft/microsoft-graph-client";
import { describe, expect, it } from "vitest";
import { classifyGraphError, parseRetryAfter } from "./errors.js";

function graphError(status: number, code: string, message: string, headers: Record<string, string> = {}): GraphError {
  const err = new GraphError(status, message);
  err.code = code;
  err.headers = new Headers(headers);
  return err;
}

const NOW = Date.parse("2025-01-01T00:00:00Z");

describe("parseRetryAfter", () => {
  it("reads delta seconds, fractional seconds and HTTP dates", () => {
    expect(parseRetryAfter("5", NOW)).toBe(5000);
    expect(parseRetryAfter("2.128", NOW)).toBe(2128);
    expect(parseRetryAfter("Wed, 01 Jan 2025 00:00:30 GMT", NOW)).toBe(30_000);
    expect(parseRetryAfter("Tue, 31 Dec 2024 00:00:00 GMT", NOW)).toBe(0);
    expect(parseRetryAfter("soon", NOW)).toBeUndefined();
    expect(parseRetryAfter(null, NOW)).toBeUndefined();
  });
});

describe("classifyGraphError", () => {
  it("429 is throttled with Retry-After", () => {
    expect(classifyGraphError(graphError(429, "TooManyRequests", "Too many requests", { "Retry-After": "7" }), NOW)).toEqual({
      kind: "throttled",
      httpStatus: 429,
      code: "TooManyRequests",
      message: "Too many requests",
      retryAfterMs: 7000,
    });
  });

  it("5xx is transient and keeps a Retry-After date", () => {
    const c = classifyGraphError(graphError(503, "serviceNotAvailable", "down", { "retry-after": "Wed, 01 Jan 2025 00:00:10 GMT" }), NOW);
    expect(c).toMatchObject({ kind: "transient", httpStatus: 503, retryAfterMs: 10_000 });
    expect(classifyGraphError(graphError(500, "generalException", "x")).kind).toBe("transient");
  });

  it("recognises Entra's password and sync refusals", () => {
    expect(
      classifyGraphError(
        graphError(
          400,
          "Request_BadRequest",
          "The specified password does not comply with password complexity requirements. Please provide a different password.",
        ),
      ).kind,
    ).toBe("complexity");
    expect(
      classifyGraphError(
        graphError(
          400,
          "Request_BadRequest",
          "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects currently undergoing migration.",
        ),
      ).kind,
    ).toBe("dirSynced");
    expect(classifyGraphError(graphError(400, "Request_BadRequest", "Something else")).kind).toBe("other");
  });

  it("maps 404, 403 and 401", () => {
    expect(classifyGraphError(graphError(404, "Request_ResourceNotFound", "gone")).kind).toBe("notFound");
    expect(classifyGraphError(graphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")).kind).toBe("forbidden");
    expect(classifyGraphError(graphError(401, "InvalidAuthenticationToken", "Access token is empty.")).kind).toBe("auth");
  });

  it("treats network failures as transient with status 0", () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" });
    expect(classifyGraphError(refused)).toMatchObject({ kind: "transient", httpStatus: 0, code: "ECONNREFUSED" });
    const fetchFailed = new TypeError("fetch failed", { cause: refused });
    expect(classifyGraphError(fetchFailed)).toMatchObject({ kind: "transient", httpStatus: 0 });
    const wrapped = new GraphError(-1, "", new TypeError("fetch failed"));
    wrapped.code = "TypeError";
    expect(classifyGraphError(wrapped)).toMatchObject({ kind: "transient", httpStatus: 0 });
  });

  it("identity errors are auth unless the token endpoint was unreachable", () => {
    const bad = Object.assign(new Error("AADSTS7000215: Invalid client secret provided."), { name: "AuthenticationError", statusCode: 401 });
    expect(classifyGraphError(bad)).toMatchObject({ kind: "auth", httpStatus: 401 });
    const sdkWrapped = new GraphError(-1, "", bad);
    sdkWrapped.code = "AuthenticationError";
    expect(classifyGraphError(sdkWrapped).kind).toBe("auth");
    const unreachable = Object.assign(new Error("network_error: Network request failed"), { name: "AuthenticationError", statusCode: 400 });
    expect(classifyGraphError(unreachable)).toMatchObject({ kind: "transient", httpStatus: 0 });
  });
});

describe("classifyGraphError keeps Graph's words out of what is stored", () => {
  it("given a code that is free text, then it is replaced by a token", async () => {
    const { classifyGraphError } = await import("./errors.js");
    const error = classifyGraphError({ statusCode: 400, code: "Bad value 'Secret-Canary-1!' for passwordProfile", message: "echo: Secret-Canary-1!" });
    expect(error.code).toBe("UnrecognisedCode");
    expect(classifyGraphError({ statusCode: 400, code: "Request_BadRequest", message: "x" }).code).toBe("Request_BadRequest");
  });
});
