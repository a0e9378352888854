import { describe, expect, it } from "vitest";
import { activeAlarms } from "../sender/alarms.js";
import { defaultSpoolDir, spoolFactsOf } from "./spoolFacts.js";

const FILETIME_UNIX_EPOCH = 116444736000000000n;
const nameAt = (seq: number, ms: number) =>
  `${seq.toString(16).padStart(16, "0")}-${(BigInt(ms) * 10_000n + FILETIME_UNIX_EPOCH).toString(16).padStart(16, "0")}.pwsf`;

describe("one spool, one owner: where and how old", () => {
  it("given no configuration on Windows, then the agent drains the filter's default folder", () => {
    expect(defaultSpoolDir("win32", { ProgramData: "D:\\ProgramData" }, "C:\\x")).toBe("D:\\ProgramData\\pwsync\\spool");
    expect(defaultSpoolDir("win32", {}, "C:\\x")).toBe("C:\\ProgramData\\pwsync\\spool");
    expect(defaultSpoolDir("linux", {}, "/var/lib/pwsync")).toBe("/var/lib/pwsync/spool");
  });

  it("given spooled files, then depth counts frames only and the age is the oldest capture time in a name", () => {
    const now = Date.UTC(2026, 10, 28, 0, 0, 0);
    const names = [nameAt(2, now - 30_000), nameAt(1, now - 90_000), "x.pwsf.tmp", `${nameAt(3, now - 999_000)}.rejected`, "notes.txt"];
    expect(spoolFactsOf(names, now)).toEqual({ depth: 2, oldestAgeMs: 90_000 });
    expect(spoolFactsOf([], now)).toEqual({ depth: 0, oldestAgeMs: 0 });
  });

  it("given a file older than the threshold, then the spoolAge alarm is active; younger or empty, then not", () => {
    const t = { queueAgeMs: 900_000, queueDepth: 10_000, spoolAgeMs: 300_000 };
    expect(activeAlarms({ depth: 0, oldestAgeMs: 0, spool: { depth: 1, oldestAgeMs: 300_000 } }, t)).toEqual(["spoolAge"]);
    expect(activeAlarms({ depth: 0, oldestAgeMs: 0, spool: { depth: 1, oldestAgeMs: 299_999 } }, t)).toEqual([]);
    expect(activeAlarms({ depth: 0, oldestAgeMs: 0, spool: { depth: 0, oldestAgeMs: 0 } }, t)).toEqual([]);
  });
});
