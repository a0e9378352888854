import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "pwsync-sandbox-main-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("sandbox-tenant main", () => {
  it("creates its TLS material, prints the SANDBOX banner and a JSON ready line with its URL, and stops on SIGTERM", async () => {
    const usersFile = join(dir, "users.json");
    await writeFile(usersFile, JSON.stringify([{ id: "u1", userPrincipalName: "a@contoso.example" }]));
    const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./main.ts", import.meta.url)), "--port", "0"], {
      env: {
        ...process.env,
        SANDBOX_PKI_DIR: join(dir, "pki"),
        SANDBOX_USERS_FILE: usersFile,
        SANDBOX_CLIENT_SECRET: "not-a-password",
        PWSYNC_LOG_LEVEL: "info",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk) => (stderr += chunk));
    const lines: Record<string, unknown>[] = [];
    const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
      child.once("exit", (code) => reject(new Error(`exited ${code}: ${stderr}`)));
      createInterface({ input: child.stdout }).on("line", (line) => {
        const entry = JSON.parse(line) as Record<string, unknown>;
        lines.push(entry);
        if (entry.event === "ready") resolve(entry);
      });
    });
    expect(ready.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(lines.some((entry) => entry.event === "sandbox_banner" && String(entry.msg).includes("NOT Microsoft"))).toBe(true);
    expect(stderr).toContain("SANDBOX TENANT");
    expect(JSON.stringify(lines)).not.toContain("not-a-password");
    const exitCode = await new Promise<number | null>((resolve) => {
      child.removeAllListeners("exit");
      child.once("exit", resolve);
      child.kill("SIGTERM");
    });
    expect(exitCode).toBe(0);
  });
});
