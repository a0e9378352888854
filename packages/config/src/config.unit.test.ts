import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, environmentOverrides, loadConfig, z } from "./index.js";

const schema = z.object({
  executor: z.object({ retryLimit: z.number().int().min(0).default(5), matchOrder: z.array(z.string()).default(["mail"]) }),
  database: z.object({ url: z.string().url() }),
});

describe("loadConfig", () => {
  it("merges file, then environment, and applies defaults", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "cfg-"));
    const file = path.join(dir, "pwsync.yaml");
    writeFileSync(file, "database:\n  url: postgres://a@localhost/x\nexecutor:\n  retryLimit: 2\n");
    const config = loadConfig(schema, { file, env: { PWSYNC_EXECUTOR__RETRY_LIMIT: "7", PWSYNC_EXECUTOR__MATCH_ORDER: '["upn","mail"]' } });
    expect(config).toEqual({ database: { url: "postgres://a@localhost/x" }, executor: { retryLimit: 7, matchOrder: ["upn", "mail"] } });
  });

  it("reports every invalid setting with its environment variable name", () => {
    expect(() => loadConfig(schema, { env: { PWSYNC_EXECUTOR__RETRY_LIMIT: "-1" } })).toThrow(ConfigError);
    try {
      loadConfig(schema, { env: { PWSYNC_EXECUTOR__RETRY_LIMIT: "-1" } });
    } catch (err) {
      expect((err as Error).message).toMatch(/executor\.retryLimit: .*PWSYNC_EXECUTOR__RETRY_LIMIT/);
      expect((err as Error).message).toMatch(/database: .*PWSYNC_DATABASE/);
    }
  });

  it("names a missing file", () => {
    expect(() => loadConfig(schema, { file: "/nonexistent/pwsync.yaml", env: {} })).toThrow(/does not exist/);
  });

  it("keeps a double-quoted value a string, so an all-digit secret survives", () => {
    expect(environmentOverrides({ PWSYNC_GRAPH__CLIENT_SECRET: '"0123456789"', PWSYNC_INGEST__PORT: "7443" })).toEqual({
      graph: { clientSecret: "0123456789" },
      ingest: { port: 7443 },
    });
  });

  it("maps PWSYNC_A__B_C to a.bC", () => {
    expect(environmentOverrides({ PWSYNC_NOTIFIER__SMTP__HOST: "mx", PWSYNC_CONFIG: "/x", OTHER: "1" })).toEqual({ notifier: { smtp: { host: "mx" } } });
  });
});
