// The Windows build bundles the agent into one file (build-exe.ts). These checks run that
// bundle with the Linux node, from a folder holding nothing else, as dc-agent.exe runs it.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { asciiSource, bundleAgent } from "./build-exe.js";

const packageVersion = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;

describe("dc-agent single-file bundle", () => {
  let dir: string;
  let bundle: string;
  let inputs: string[];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "pwsync-bundle-"));
    bundle = path.join(dir, "dc-agent.cjs");
    inputs = await bundleAgent(bundle);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("holds only the client half of gRPC: no server code, nothing that loads .proto files at import", () => {
    expect(inputs.filter((i) => i.endsWith("packages/grpc/src/server.ts") || i.includes("grpc-health-check"))).toEqual([]);
    expect(inputs.some((i) => i.endsWith("packages/grpc/src/client.ts"))).toBe(true);
  });

  it("is ASCII only, so V8 holds its multi-megabyte source at one byte per character", () => {
    const source = readFileSync(bundle);
    expect(source.length).toBeGreaterThan(1_000_000);
    expect(source.findIndex((byte) => byte > 0x7f)).toBe(-1);
  });

  it("writes the characters esbuild leaves in comments as escapes, and refuses a line separator it would turn into code", () => {
    expect(asciiSource("// a multiple of zero \u2014 or \u00e9\nx = 1;")).toBe("// a multiple of zero \\u2014 or \\u00e9\nx = 1;");
    expect(() => asciiSource("// ends here\u2028x = 1;")).toThrow(/U\+2028/);
  });

  it("has no native modules", () => {
    expect(inputs.filter((i) => i.endsWith(".node"))).toEqual([]);
  });

  it("reports the package version it was built from, with no package.json beside it", () => {
    expect(execFileSync(process.execPath, [bundle, "version"], { cwd: dir, encoding: "utf8" }).trim()).toBe(packageVersion);
  });

  it("starts and reads its configuration (a missing file is named, exit 2)", () => {
    const missing = path.join(dir, "absent.yaml");
    const run = spawnSync(process.execPath, [bundle, "verify"], { cwd: dir, encoding: "utf8", env: { ...process.env, PWSYNC_CONFIG: missing } });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(missing);
  });
});
