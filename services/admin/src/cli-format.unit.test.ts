import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { ago, parseWhen, table } from "./cli-format.js";

describe("CLI formatting", () => {
  it("pads columns to the widest cell", () => {
    expect(
      table(
        ["A", "BB"],
        [
          ["xxx", "y"],
          ["z", "wwww"],
        ],
      ),
    ).toBe("A    BB\n---  ----\nxxx  y\nz    wwww\n");
  });

  it("reads relative and absolute times, and refuses others", () => {
    const now = Date.parse("2026-01-01T12:00:00Z");
    expect(parseWhen("2h", now).toISOString()).toBe("2026-01-01T10:00:00.000Z");
    expect(parseWhen("2026-01-01T00:00:00Z", now).toISOString()).toBe("2026-01-01T00:00:00.000Z");
    expect(() => parseWhen("yesterday", now)).toThrow(/not a time/);
  });

  it("says how long ago", () => {
    const now = Date.parse("2026-01-01T12:00:00Z");
    expect(ago(timestampFromDate(new Date(now - 90_000)), now)).toBe("90s ago");
    expect(ago(timestampFromDate(new Date(now - 3 * 3_600_000)), now)).toBe("3h ago");
    expect(ago(undefined, now)).toBe("never");
  });
});
