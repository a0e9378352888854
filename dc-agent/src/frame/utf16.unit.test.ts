import { describe, expect, it } from "vitest";
import { checkWellFormedUtf16le, utf16leToUtf8 } from "./utf16.js";

const u16 = (s: string) => Buffer.from(s, "utf16le");

describe("utf16leToUtf8", () => {
  it("matches Node's own transcoding for BMP and astral text", () => {
    for (const s of ["", "canary", "ünïcødé", "\u{1F600}\u{1D11E}x", "\u0800\uffff"]) {
      expect(utf16leToUtf8(u16(s))!.toString("hex")).toBe(Buffer.from(s, "utf8").toString("hex"));
    }
  });

  it("returns null for unpaired surrogates instead of inventing U+FFFD", () => {
    expect(utf16leToUtf8(Buffer.from([0x00, 0xd8]))).toBeNull();
    expect(utf16leToUtf8(Buffer.from([0x00, 0xdc, 0x41, 0x00]))).toBeNull();
    expect(checkWellFormedUtf16le(Buffer.from([0x41, 0x00, 0x00, 0xd8, 0x41, 0x00]))).toEqual({ ok: false, badUnitIndex: 1 });
  });
});
