// Issue 11, finding 3, the agent's half: a frame someone else planted in the spool folder is
// never drained as a change. Real files and real owners (chown needs root, as the suite runs).
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { encodeSpoolEnvelope } from "../frame/index.js";
import { capturingLogger } from "../test-support/capturingLogger.js";
import { frameFor } from "../test-support/frames.js";
import { drainSpool } from "./drainSpool.js";
import { ownerVerdict, posixOwnerCheck } from "./spoolOwner.js";
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
