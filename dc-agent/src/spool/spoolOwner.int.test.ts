// Issue 11, finding 3, the agent's half: a frame someone else planted in the spool folder is
// never drained as a change. Real files and real owners (chown needs root, as the suite runs).
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { encodeSpoolEnvelope } from "../frame/index.js";
import { capturingLogger } from "../test-support/capturingLogger.js";
import { frameFor } from "../test-support/frames.js";
import { drainSpool } from "./drainSpool.js";
import { nativeOwnerCheck, ownerVerdict, parseOwnerLines, posixOwnerCheck } from "./spoolOwner.js";
import { noProtection } from "./unprotect.js";

const dir = mkdtempSync(path.join(tmpdir(), "pwsync-spool-owner-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const NOBODY = 65534;

describe("spool file owner check", () => {
  it("given the owner the agent trusts, then trusted; any other, then not, naming the owner", () => {
    expect(ownerVerdict("S-1-5-18", "S-1-5-18")).toEqual({ trusted: true });
    expect(ownerVerdict("S-1-5-21-1-2-3-1104", "S-1-5-18")).toEqual({ trusted: false, owner: "S-1-5-21-1-2-3-1104" });
    expect(ownerVerdict(65534, 0)).toEqual({ trusted: false, owner: "65534" });
  });

  it.skipIf(process.getuid?.() !== 0)("drains the filter's files and refuses a planted one with an ALARM, leaving it for an operator", async () => {
    const spool = mkdtempSync(path.join(dir, "spool-"));
    const real = "0000000000000001-01dc000000000001.pwsf";
    const planted = "0000000000000002-01dc000000000002.pwsf";
    writeFileSync(path.join(spool, real), encodeSpoolEnvelope(frameFor("alice", "not-a-real-secret-1")));
    writeFileSync(path.join(spool, planted), encodeSpoolEnvelope(frameFor("mallory", "not-a-real-secret-2")));
    chownSync(path.join(spool, planted), NOBODY, NOBODY);
    const { logger, records } = capturingLogger();
    const handled: string[] = [];
    const handle = async (frame: { accountName: string }) => (handled.push(frame.accountName), "accepted" as const);

    expect(await drainSpool(spool, noProtection, handle, logger, posixOwnerCheck)).toBe(true);
    expect(handled).toEqual(["alice"]);
    expect(existsSync(path.join(spool, real))).toBe(false);
    expect(readdirSync(spool)).toEqual([`${planted}.rejected`]);
    expect(records().find((r) => r.alarm === "spoolForeignFile")).toMatchObject({ file: planted, owner: String(NOBODY) });
  });
});

describe("spool file owner check through dc-agent/native/pwsync-pipe.exe, under wine", () => {
  const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
  const winePrefix = path.join(repo, ".state", "wine");

  it("parses the helper's answer: its own SID, then each file's owner or error (pure)", () => {
    expect(parseOwnerLines("self S-1-5-18\r\nowner S-1-5-18\r\nowner S-1-5-32-544\r\nerror 2\r\n", 3)).toEqual([
      { trusted: true },
      { trusted: false, owner: "S-1-5-32-544" },
      { trusted: false, owner: "unreadable (Win32 error 2)" },
    ]);
    expect(() => parseOwnerLines("self S-1-5-18\nowner S-1-5-18\n", 2)).toThrow(/1 of 2/);
  });

  it.skipIf(process.getuid?.() !== 0)(
    "trusts files of the agent's own account only; a file chowned to another account, or missing, is not",
    async () => {
      if (!existsSync(path.join(winePrefix, "system.reg")))
        execFileSync("bash", [path.join(repo, "lsa-filter/scripts/install-toolchain.sh")], { stdio: "inherit", env: { ...process.env, PWSYNC_WINE32: "0" } });
      const out = path.join(dir, "native");
      execFileSync("make", ["-C", path.join(repo, "dc-agent/native"), "-s", `OUT=${out}`], { stdio: "inherit" });
      const helper = path.join(dir, "owner-helper.sh");
      writeFileSync(helper, `#!/bin/sh\nWINEPREFIX='${winePrefix}' WINEDEBUG=-all exec wine '${path.join(out, "pwsync-pipe.exe")}' "$@"\n`);
      chmodSync(helper, 0o755);
      const files = mkdtempSync(path.join(dir, "owned-"));
      writeFileSync(path.join(files, "mine.pwsf"), "x");
      writeFileSync(path.join(files, "planted.pwsf"), "x");
      chownSync(path.join(files, "planted.pwsf"), NOBODY, NOBODY);
      const W = (p: string) => `Z:${p.replace(/\//g, "\\")}`;
      const verdicts = await nativeOwnerCheck(helper)([
        W(path.join(files, "mine.pwsf")),
        W(path.join(files, "planted.pwsf")),
        W(path.join(files, "absent.pwsf")),
      ]);
      expect(verdicts[0]).toEqual({ trusted: true });
      expect(verdicts[1]).toMatchObject({ trusted: false });
      expect(verdicts[2]).toMatchObject({ trusted: false, owner: expect.stringMatching(/unreadable/) });
      await expect(nativeOwnerCheck(undefined)(["x"])).rejects.toThrow(/no owner helper/);
    },
    120_000,
  );
});
