import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { spawnService } from "@pwsync/devstack";
import { expect, it } from "vitest";
import { isRunning, repoRoot } from "./support/processes.js";

it("a service that misses its ready deadline is stopped, not abandoned with its port", async () => {
  const logs = mkdtempSync(path.join(tmpdir(), "pwsync-ready-"));
  let pid: number | undefined;
  const error = await spawnService({
    name: "silent",
    entry: path.join(repoRoot, "test/e2e/support/silent-service.ts"),
    env: process.env,
    logFile: path.join(logs, "silent.log"),
    ready: (line) => {
      pid = line.pid as number;
      return undefined;
    },
    readyTimeoutMs: 5_000,
  }).catch((err: unknown) => err as Error);

  expect(error).toBeInstanceOf(Error);
  expect((error as Error).message).toMatch(/did not become ready within 5000 ms and was stopped/);
  expect(pid).toBeGreaterThan(0);
  expect(isRunning(pid!)).toBe(false);
}, 120_000);
