import { describe, expect, it } from "vitest";
import { loggableLine, restartDelay } from "./syncpasswords.js";

describe("restartDelay (supervision of syncpasswords)", () => {
  it("given failures in a row, when restarting, then the delay doubles from the minimum up to the cap", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => restartDelay(n, 1000, 60_000))).toEqual([1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000]);
  });
});

describe("loggableLine (samba-tool's output in our logs)", () => {
  it("given samba-tool's redacted secret lines or any base64 value, when filtered, then they are never logged", () => {
    expect(loggableLine("# unicodePwd:: REDACTED SECRET ATTRIBUTE")).toBe(false);
    expect(loggableLine("virtualClearTextUTF16:: AAAA")).toBe(false);
    expect(loggableLine("Call Popen[/x/hook] for CN=a,CN=Users,DC=x")).toBe(true);
  });
});
