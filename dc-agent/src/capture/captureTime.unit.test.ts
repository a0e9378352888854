import { timestampDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { crossCheckPasswordLastSet, filetimeToTimestamp } from "./captureTime.js";

describe("capture time", () => {
  it("given a FILETIME with sub-millisecond digits, when converted, then every 100 ns tick is kept", () => {
    // 2026-11-27T12:00:00.0001234Z
    const base = 116444736000000000n + 1795780800n * 10_000_000n;
    const t = filetimeToTimestamp(base + 1234n);
    expect(t.seconds).toBe(1795780800n);
    expect(t.nanos).toBe(123_400);
    expect(timestampDate(t).toISOString()).toBe("2026-11-27T12:00:00.000Z");
  });

  it("given two captures 300 ns apart, when converted, then they still differ", () => {
    const a = filetimeToTimestamp(133_000_000_000_000_000n);
    const b = filetimeToTimestamp(133_000_000_000_000_003n);
    expect(b.nanos - a.nanos).toBe(300);
  });

  it("given a FILETIME before 1970, when converted, then it clamps to the epoch instead of going negative", () => {
    expect(filetimeToTimestamp(5n)).toMatchObject({ seconds: 0n, nanos: 0 });
  });
});

describe("pwdLastSet cross-check", () => {
  const captured = new Date("2026-11-27T12:00:00Z");
  it("given pwdLastSet equal to the capture, then consistent", () => {
    expect(crossCheckPasswordLastSet(captured, new Date(captured.getTime() + 500)).kind).toBe("consistent");
  });
  it("given pwdLastSet a minute after the capture (the account changed again while this one waited), then a newer change is reported and nothing else", () => {
    expect(crossCheckPasswordLastSet(captured, new Date(captured.getTime() + 60_000))).toEqual({ kind: "newerChangeSince", byMs: 60_000 });
  });
  it("given pwdLastSet well before the capture, then the clocks are suspect", () => {
    expect(crossCheckPasswordLastSet(captured, new Date(captured.getTime() - 10_000))).toEqual({ kind: "captureAfterPasswordLastSet", byMs: 10_000 });
  });
  it("given no pwdLastSet, then unknown", () => {
    expect(crossCheckPasswordLastSet(captured, undefined).kind).toBe("unknown");
  });
});
