import { describe, expect, it } from "vitest";
import { changeIdFor } from "./changeId.js";

const frame = { sequence: 7n, capturedAtFiletime: 133_000_000_000_000_000n, accountNameUtf16le: Buffer.from("alice", "utf16le") };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("change id", () => {
  it("is a UUID ingest accepts, the same for the same capture", () => {
    expect(changeIdFor("dc01", frame)).toMatch(UUID);
    expect(changeIdFor("DC01", { ...frame, accountNameUtf16le: Buffer.from(frame.accountNameUtf16le) })).toBe(changeIdFor("dc01", frame));
  });

  it("differs when any part of the capture differs", () => {
    const base = changeIdFor("dc01", frame);
    expect(changeIdFor("dc02", frame)).not.toBe(base);
    expect(changeIdFor("dc01", { ...frame, sequence: 8n })).not.toBe(base);
    expect(changeIdFor("dc01", { ...frame, capturedAtFiletime: frame.capturedAtFiletime + 1n })).not.toBe(base);
    expect(changeIdFor("dc01", { ...frame, accountNameUtf16le: Buffer.from("alicf", "utf16le") })).not.toBe(base);
  });
});
