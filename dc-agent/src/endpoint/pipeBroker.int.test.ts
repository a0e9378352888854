import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { eventually } from "@pwsync/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { wipe, type DecodedFrame } from "../frame/index.js";
import { capturingLogger } from "../test-support/capturingLogger.js";
import { startPipeBroker } from "./pipeBroker.js";
import type { FrameServer } from "./frameServer.js";

// Issue 11, "the pipe": Node cannot create a pipe with a DACL or PIPE_REJECT_REMOTE_CLIENTS, so
// dc-agent/native/pwsync-pipe.exe owns it and relays frames to the agent. Under wine: the real
// filter DLL (the harness playing LSA) delivers through the helper's pipe to this Node process.
// Wine runs every process as one user and has no remote clients, so what it can show is the
// DACL a client sees (no Everyone entry) and the relay itself; remote rejection needs Windows.

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const root = mkdtempSync(path.join(tmpdir(), "dc-agent-pipe-"));
const winePrefix = path.join(repo, ".state", "wine");
const canary = `Pipe${randomBytes(5).toString("hex")}Aa`;
const pipeName = `\\\\.\\pipe\\pwsync-broker-${randomBytes(4).toString("hex")}`;
const W = (p: string) => `Z:${p.replace(/\//g, "\\")}`;
const log = capturingLogger();
const received: { account: string; passwordMatches: boolean }[] = [];
let broker: FrameServer | undefined;

beforeAll(() => {
  if (!existsSync(path.join(winePrefix, "system.reg")))
    execFileSync("bash", [path.join(repo, "lsa-filter/scripts/install-toolchain.sh")], { stdio: "inherit", env: { ...process.env, PWSYNC_WINE32: "0" } });
  execFileSync("make", ["-C", path.join(repo, "lsa-filter"), "-s", "x64"], { stdio: "inherit" });
  execFileSync("make", ["-C", path.join(repo, "dc-agent/native"), "-s", `OUT=${path.join(root, "native")}`], { stdio: "inherit" });
}, 600_000);

afterAll(async () => {
  await broker?.close();
});

describe("pwsync-pipe.exe under wine", () => {
  it("serves the filter's frames to the agent through a SYSTEM-only pipe, with the agent's acks", async () => {
    const helper = path.join(root, "pipe-helper.sh");
    writeFileSync(helper, `#!/bin/sh\nWINEPREFIX='${winePrefix}' WINEDEBUG=-all exec wine '${path.join(root, "native", "pwsync-pipe.exe")}' "$@"\n`);
    chmodSync(helper, 0o755);
    broker = await startPipeBroker({
      command: [helper],
      pipeName,
      logger: log.logger,
      handle: async (frame: DecodedFrame) => {
        received.push({ account: frame.accountName, passwordMatches: frame.password.equals(Buffer.from(`${canary}-${frame.accountName}-1`, "utf16le")) });
        wipe(frame.password);
        return "accepted";
      },
    });
    await eventually("helper listening", async () => log.records().some((r) => String(r.line ?? "").includes("listening")), 60_000);

    const work = path.join(root, "work");
    mkdirSync(work, { recursive: true });
    const done = path.join(root, "done");
    const outFile = path.join(root, "harness.out");
    const harness = spawn(
      "bash",
      [
        "-c",
        `exec wine "$@" >"${outFile}" 2>&1`,
        "wine",
        path.join(repo, "lsa-filter/build/x64/harness.exe"),
        W(path.join(repo, "lsa-filter/build/x64/pwsync-filter.dll")),
        W(path.join(repo, "lsa-filter/test/vectors")),
        W(work),
        W(path.join(root, "captured")),
        "x64",
        "pipe",
      ],
      {
        env: {
          ...process.env,
          WINEPREFIX: winePrefix,
          WINEDLLOVERRIDES: "mscoree,mshtml=",
          WINEDEBUG: "-all",
          PWSYNC_E2E_PIPE: pipeName,
          PWSYNC_E2E_CHANGES: "alice:1,carol:1,dan:1",
          PWSYNC_E2E_PASSWORD_PREFIX: canary,
          PWSYNC_E2E_DONE_FILE: W(done),
        },
        stdio: "ignore",
      },
    );
    const exited = new Promise<number | null>((resolve) => harness.on("close", resolve));
    await eventually("three frames through the helper", async () => received.length >= 3, 60_000);
    writeFileSync(done, "");
    expect(await exited).toBe(0);
    const out = readFileSync(outFile, "utf8");
    expect(out).toMatch(/ok - the agent's pipe grants access to SYSTEM \(the agent's account\) only/);
    expect(out).toMatch(/ok - nothing was spooled/);
    expect(out).toMatch(/harness x64 pipe: \d+ passed, 0 failed/);
    expect(received).toEqual(["alice", "carol", "dan"].map((account) => ({ account, passwordMatches: true })));
    expect(log.lines.join("\n")).not.toContain(canary);
  });
});
