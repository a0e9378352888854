import { ensureDevPki } from "@pwsync/pki";
import { createTestDatabase, eventually } from "@pwsync/testkit";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "./cli.js";

// main.ts as a process: config from PWSYNC_CONFIG, ready line, answers the CLI, stops on SIGTERM.

const here = path.dirname(fileURLToPath(import.meta.url));
let child: ChildProcess | undefined;
afterAll(() => {
  child?.kill("SIGKILL");
});

describe("admin main", () => {
  it("starts from pwsync.yaml, answers `pwsync status`, stops cleanly on SIGTERM", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "admin-main-"));
    const pki = await ensureDevPki(path.join(dir, "pki"), { admins: ["ops"] });
    const config = path.join(dir, "pwsync.yaml");
    writeFileSync(
      config,
      [
        `database: { url: "${await createTestDatabase("adminmain")}" }`,
        "admin:",
        "  host: 127.0.0.1",
        "  port: 0",
        `  tls: { caFile: "${pki.adminCa.cert}", certFile: "${pki.server.cert}", keyFile: "${pki.server.key}" }`,
        "  watchdog: { intervalSeconds: 1 }",
      ].join("\n"),
    );
    let output = "";
    child = spawn(process.execPath, ["--import", "tsx", path.join(here, "main.ts")], {
      env: { ...process.env, PWSYNC_CONFIG: config },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout!.on("data", (c: Buffer) => (output += c));
    child.stderr!.on("data", (c: Buffer) => (output += c));
    const ready = await eventually("the ready line", async () =>
      output
        .split("\n")
        .map((l) => (l.startsWith("{") ? JSON.parse(l) : {}))
        .find((l) => l.event === "ready"),
    );
    expect(ready).toMatchObject({ tenant: "NOT_CONFIGURED", watchdog: true });
    let out = "";
    const code = await runCli(["status"], {
      out: (t) => (out += t),
      err: (t) => (out += t),
      env: {
        PWSYNC_ADMIN_ADDR: `localhost:${ready.port}`,
        PWSYNC_ADMIN_CA: pki.ca.cert,
        PWSYNC_ADMIN_CERT: pki.admins.ops!.cert,
        PWSYNC_ADMIN_KEY: pki.admins.ops!.key,
      },
    });
    expect(out).toContain("tenant:        not_configured");
    expect(code).toBe(0);
    const exited = new Promise<number | null>((resolve) => child!.on("exit", resolve));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(output).toContain("admin stopped");
  });
});
