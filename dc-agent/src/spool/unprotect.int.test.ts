// The spool's DPAPI step fails safe: a helper that is missing, fails or answers nothing keeps
// the spooled file (ALARM) instead of renaming it *.rejected as a corrupt frame. The helper here
// is a stand-in script; the real one (pwsync-service.exe unprotect) runs under wine in
// dc-agent/windows/test/msi-wine.sh.
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { encodeSpoolEnvelope } from "../frame/index.js";
import { capturingLogger } from "../test-support/capturingLogger.js";
import { frameFor } from "../test-support/frames.js";
import { drainSpool } from "./drainSpool.js";
import { posixOwnerCheck } from "./spoolOwner.js";
import { dpapiUnprotectWith, UnprotectUnavailableError } from "./unprotect.js";

const dir = mkdtempSync(path.join(tmpdir(), "pwsync-unprotect-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function helper(name: string, body: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

describe("DPAPI helper", () => {
  it("returns what the helper writes for the blob on stdin", async () => {
    const echo = helper("echo.sh", 'test "$1" = unprotect && exec cat');
    expect((await dpapiUnprotectWith(echo)(Buffer.from("frame bytes"))).toString()).toBe("frame bytes");
  });

  it("treats an empty answer, a failure or a missing helper as unavailable, never as a frame", async () => {
    const silent = helper("silent.sh", "cat >/dev/null; exit 0");
    const failing = helper("failing.sh", "cat >/dev/null; echo 'CryptUnprotectData failed (error 13)' >&2; exit 3");
    await expect(dpapiUnprotectWith(silent)(Buffer.from("x"))).rejects.toBeInstanceOf(UnprotectUnavailableError);
    await expect(dpapiUnprotectWith(failing)(Buffer.from("x"))).rejects.toThrow(/exited with 3.*error 13/);
    await expect(dpapiUnprotectWith(path.join(dir, "absent"))(Buffer.from("x"))).rejects.toBeInstanceOf(UnprotectUnavailableError);
    await expect(dpapiUnprotectWith(undefined)(Buffer.from("x"))).rejects.toThrow(/PWSYNC_DPAPI_HELPER/);
  });

  it("keeps spooled files it cannot decrypt, raises an alarm, and drains them once decryption works", async () => {
    const spool = mkdtempSync(path.join(dir, "spool-"));
    const names = ["0000000000000001-0000000000000001.pwsf", "0000000000000002-0000000000000002.pwsf"];
    names.forEach((n, i) => writeFileSync(path.join(spool, n), encodeSpoolEnvelope(frameFor(`user${i}`, "not-a-real-secret"))));
    const { logger, records } = capturingLogger();
    const handled: string[] = [];
    const handle = async (frame: { accountName: string }) => (handled.push(frame.accountName), "accepted" as const);

    const silent = helper("silent2.sh", "cat >/dev/null; exit 0");
    expect(await drainSpool(spool, dpapiUnprotectWith(silent), handle, logger, posixOwnerCheck)).toBe(false);
    expect(readdirSync(spool).sort()).toEqual(names);
    expect(handled).toEqual([]);
    expect(records().some((r) => r.alarm === "spool-undecryptable")).toBe(true);

    const echo = helper("echo2.sh", "exec cat");
    expect(await drainSpool(spool, dpapiUnprotectWith(echo), handle, logger, posixOwnerCheck)).toBe(true);
    expect(handled).toEqual(["user0", "user1"]);
    expect(names.some((n) => existsSync(path.join(spool, n)) || existsSync(path.join(spool, `${n}.rejected`)))).toBe(false);
  });
});
