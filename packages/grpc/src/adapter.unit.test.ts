import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { GrpcError, toServiceError } from "./adapter.js";

describe("toServiceError: what a caller learns when a handler fails", () => {
  it("given a GrpcError, its own status and message", () => {
    expect(toServiceError(new GrpcError(grpc.status.NOT_FOUND, "change 1 not found"))).toEqual({ code: grpc.status.NOT_FOUND, details: "change 1 not found" });
  });

  it("given the database host cannot be resolved or reached, UNAVAILABLE (retry), not INTERNAL", () => {
    for (const code of ["EAI_AGAIN", "ENOTFOUND", "ECONNREFUSED", "57P01"]) {
      expect(toServiceError(Object.assign(new Error(`getaddrinfo ${code} postgres`), { code })).code).toBe(grpc.status.UNAVAILABLE);
    }
  });

  it("given any other error, INTERNAL without its text (it stays in the server log)", () => {
    const answer = toServiceError(new Error("secret detail from deep inside"));
    expect(answer.code).toBe(grpc.status.INTERNAL);
    expect(answer.details).not.toMatch(/secret detail/);
  });
});
