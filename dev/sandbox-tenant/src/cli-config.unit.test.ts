import { describe, expect, it } from "vitest";
import { readSandboxConfig } from "./cli-config.js";

describe("readSandboxConfig", () => {
  it("takes env, lets argv win, and parses the write budget", () => {
    const config = readSandboxConfig(["--port", "9443", "--write-budget", "5/2"], {
      SANDBOX_PORT: "1",
      SANDBOX_PKI_DIR: "/pki",
      SANDBOX_CLIENT_SECRET: "from-env",
      SANDBOX_APP_ROLES: "User.Read.All, User.ReadWrite.All",
    });
    expect(config.port).toBe(9443);
    expect(config.pkiDir).toBe("/pki");
    expect(config.clientSecret).toBe("from-env");
    expect(config.appRoles).toEqual(["User.Read.All", "User.ReadWrite.All"]);
    expect(config.writeBudget).toEqual({ writes: 5, windowMs: 2000 });
  });

  it("refuses to start without TLS material", () => {
    expect(() => readSandboxConfig([], {})).toThrow(/tls-cert/);
  });

  it("does not accept the client secret on the command line", () => {
    expect(() => readSandboxConfig(["--client-secret", "x", "--pki-dir", "/p"], {})).toThrow();
  });
});
