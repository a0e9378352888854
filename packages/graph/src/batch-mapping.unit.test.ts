import { describe, expect, it } from "vitest";
import {
  batchKeyOf,
  envelopeFailure,
  GraphBatchAbandoned,
  isAbortedBeforeSending,
  parseSubResponseBody,
  stepOf,
  resultOf,
  type GraphCall,
} from "./batch-mapping.js";
import { classifyGraphError } from "./errors.js";

const write = (userId: string, signal?: AbortSignal): GraphCall => ({
  kind: "setPassword",
  userId,
  password: "Pw-1aB!xyz",
  forceChangePasswordNextSignIn: false,
  ...(signal ? { signal } : {}),
});
const lookup: GraphCall = { kind: "findUsers", by: "mail", value: "o'brien+tag&x@contoso.example" };

describe("which calls may share a batch", () => {
  it("given two writes for one user (any case), then they get the same key, so never the same batch", () => {
    let n = 0;
    expect(batchKeyOf(write("ABC"), () => n++)).toBe(batchKeyOf(write("abc"), () => n++));
  });

  it("given lookups, then each has its own key", () => {
    let n = 0;
    expect(batchKeyOf(lookup, () => n++)).not.toBe(batchKeyOf(lookup, () => n++));
  });

  it("given a write whose signal fired, then it is not sent; a live one or a lookup is", () => {
    expect(isAbortedBeforeSending(write("a", AbortSignal.abort()))).toBe(true);
    expect(isAbortedBeforeSending(write("a", new AbortController().signal))).toBe(false);
    expect(isAbortedBeforeSending(lookup)).toBe(false);
  });
});

describe("a call as a batch step", () => {
  it("given a lookup, then its URL carries the same encoded filter, select and top as the single request", () => {
    const { path, init } = stepOf(lookup);
    expect(init.method).toBe("GET");
    const url = new URL(path, "https://graph.example");
    expect(url.pathname).toBe("/users");
    expect(url.searchParams.get("$filter")).toBe("mail eq 'o''brien+tag&x@contoso.example'");
    expect(url.searchParams.get("$select")).toBe("id,userPrincipalName,mail,accountEnabled,onPremisesSyncEnabled");
    expect(url.searchParams.get("$top")).toBe("2");
  });

  it("given a write, then it is a JSON PATCH of passwordProfile with its Content-Type", () => {
    const { path, init } = stepOf(write("a/b"));
    expect(path).toBe("/users/a%2Fb");
    expect(init).toMatchObject({ method: "PATCH", headers: { "Content-Type": "application/json" } });
    expect(JSON.parse(init.body as string)).toEqual({ passwordProfile: { password: "Pw-1aB!xyz", forceChangePasswordNextSignIn: false } });
  });
});

describe("answers to callers", () => {
  it("given a lookup's body, then the users; given a write's, nothing", () => {
    expect(resultOf(lookup, { value: [{ id: "1", userPrincipalName: "u@x" }] })).toEqual([
      { id: "1", userPrincipalName: "u@x", mail: null, accountEnabled: false, onPremisesSyncEnabled: null },
    ]);
    expect(resultOf(write("a"), undefined)).toBeUndefined();
  });

  it("given a failed batch request, then each member gets that error, or its own signal's reason if it fired", () => {
    const fired = AbortSignal.abort(new DOMException("late", "TimeoutError"));
    const graphDown = new Error("boom");
    expect(envelopeFailure(lookup, graphDown, false)).toBe(graphDown);
    expect(envelopeFailure(write("a", fired), graphDown, true)).toBe(fired.reason);
    expect(envelopeFailure(write("b", new AbortController().signal), graphDown, true)).toBeInstanceOf(GraphBatchAbandoned);
  });

  it("given a batch given up before Graph answered, then its members classify as transient with no HTTP answer", () => {
    expect(classifyGraphError(new GraphBatchAbandoned("x"))).toMatchObject({ kind: "transient", httpStatus: 0, code: "BatchAbandoned" });
  });

  it("reads a sub-response body as JSON only when it says so", () => {
    expect(parseSubResponseBody('{"a":1}', "application/json; charset=utf-8")).toEqual({ a: 1 });
    expect(parseSubResponseBody("plain", "text/plain")).toBe("plain");
    expect(parseSubResponseBody("", null)).toBeUndefined();
  });
});
