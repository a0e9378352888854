import { describe, expect, it } from "vitest";
import { MAX_BATCH_REQUESTS, parseBatch, SubResponse, subRequestUrl } from "./batch.js";

const get = (id: string) => ({ id, method: "GET", url: "/users" });

describe("parseBatch: a $batch body as Graph documents it", () => {
  it("given up to 20 requests with unique ids, then it reads them, header names lower-cased", () => {
    const parsed = parseBatch({
      requests: [get("1"), { id: "2", method: "patch", url: "users/x", headers: { "Content-Type": "application/json" }, body: { a: 1 } }],
    });
    expect(parsed).toEqual({
      ok: true,
      requests: [
        { id: "1", method: "GET", url: "/users", headers: {} },
        { id: "2", method: "PATCH", url: "users/x", headers: { "content-type": "application/json" }, body: { a: 1 } },
      ],
    });
  });

  it.each([
    ["no requests array", {}],
    ["an empty batch", { requests: [] }],
    ["21 requests", { requests: Array.from({ length: MAX_BATCH_REQUESTS + 1 }, (_, i) => get(String(i))) }],
    ["a duplicate id", { requests: [get("1"), get("1")] }],
    ["a missing id", { requests: [{ method: "GET", url: "/users" }] }],
    ["an unknown method", { requests: [{ id: "1", method: "TRACE", url: "/users" }] }],
    ["an absolute URL", { requests: [{ id: "1", method: "GET", url: "https://evil.example/users" }] }],
    ["a nested batch", { requests: [{ id: "1", method: "POST", url: "/$batch" }] }],
    ["a body without Content-Type", { requests: [{ id: "1", method: "PATCH", url: "/users/x", body: {} }] }],
    ["dependsOn (not implemented by the sandbox)", { requests: [get("1"), { ...get("2"), dependsOn: ["1"] }] }],
  ])("given %s, then it is refused as BadRequest", (_name, body) => {
    expect(parseBatch(body)).toMatchObject({ ok: false, code: "BadRequest" });
  });
});

describe("subRequestUrl", () => {
  it("resolves a relative URL, with or without its leading slash, under /v1.0", () => {
    expect(subRequestUrl("https://h", "users?$top=2").href).toBe("https://h/v1.0/users?$top=2");
    expect(subRequestUrl("https://h", "/users/x").pathname).toBe("/v1.0/users/x");
  });
});

describe("SubResponse", () => {
  it("collects status, Title-Cased headers without Content-Length, and a JSON body", () => {
    const reply = new SubResponse();
    reply.writeHead(429, { "content-type": "application/json; charset=utf-8", "content-length": 10, "retry-after": "3" });
    reply.end(JSON.stringify({ error: { code: "TooManyRequests" } }));
    expect(reply.toJson("7")).toEqual({
      id: "7",
      status: 429,
      headers: { "Content-Type": "application/json; charset=utf-8", "Retry-After": "3" },
      body: { error: { code: "TooManyRequests" } },
    });
  });

  it("leaves the body out of a 204", () => {
    expect(new SubResponse().writeHead(204, { "request-id": "r" }).end().toJson("1")).toEqual({ id: "1", status: 204, headers: { "Request-Id": "r" } });
  });
});
