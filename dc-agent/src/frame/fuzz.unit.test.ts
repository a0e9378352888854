import { describe, expect, it } from "vitest";
import { decodeAck } from "./ack.js";
import { decodeFrame, decodeHeader } from "./decodeFrame.js";
import type { FrameError, Result } from "./errors.js";
import { decodeSpoolEnvelope } from "./spoolEnvelope.js";
import { loadVectors, vectorBytes } from "./vectorFixtures.js";

// Deterministic PRNG so a failure reproduces; the seed is in the test name.
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CODES = new Set<FrameError["code"]>([
  "Truncated",
  "TrailingBytes",
  "BadMagic",
  "UnsupportedVersion",
  "BadHeaderSize",
  "UnsupportedFlags",
  "ReservedNotZero",
  "FrameTooLarge",
  "LengthMismatch",
  "OddLength",
  "TooLong",
  "EmptyAccount",
  "InvalidUtf16",
  "InvalidAccountName",
  "BadAckStatus",
  "BlobTooLarge",
]);

function expectTypedOutcome(r: Result<unknown>): void {
  if (!r.ok) {
    expect(CODES.has(r.error.code)).toBe(true);
    expect(typeof r.error.message).toBe("string");
  }
}

function callNeverThrows<T>(fn: () => Result<T>): Result<T> {
  let r: Result<T> | undefined;
  expect(() => {
    r = fn();
  }).not.toThrow();
  return r!;
}

const seeds = loadVectors()
  .filter((v) => v.expect === "ok")
  .map(vectorBytes);

describe("decoders on hostile input return a typed error, never throw", () => {
  it("every truncation of every valid frame is Truncated", () => {
    for (const frame of seeds) {
      for (let n = 0; n < frame.length; n++) {
        const r = callNeverThrows(() => decodeFrame(frame.subarray(0, n)));
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.error.code).toBe("Truncated");
      }
    }
  });

  it("any frame with bytes appended is TrailingBytes", () => {
    for (const frame of seeds) {
      for (const extra of [1, 2, 7, 4096]) {
        const r = decodeFrame(Buffer.concat([frame, Buffer.alloc(extra, 0x41)]));
        expect(r.ok ? "ok" : r.error.code).toBe("TrailingBytes");
      }
    }
  });

  it("every version but 1 is UnsupportedVersion", () => {
    const frame = Buffer.from(seeds[0]!);
    for (const version of [0, 2, 3, 255, 0xffff]) {
      frame.writeUInt16LE(version, 4);
      const r = decodeFrame(frame);
      expect(r.ok ? "ok" : r.error.code).toBe("UnsupportedVersion");
    }
  });

  it("oversized announced lengths are refused from the header alone", () => {
    const frame = Buffer.from(seeds[0]!.subarray(0, 40));
    for (const len of [1065, 65536, 0x7fffffff, 0xffffffff]) {
      frame.writeUInt32LE(len, 8);
      const r = decodeHeader(frame);
      expect(r.ok ? "ok" : r.error.code).toBe("FrameTooLarge");
    }
  });

  it("seed 0x5eed: 20,000 single-byte mutations of valid frames", () => {
    const rnd = mulberry32(0x5eed);
    for (let i = 0; i < 20000; i++) {
      const frame = Buffer.from(seeds[i % seeds.length]!);
      const flips = 1 + Math.floor(rnd() * 3);
      for (let f = 0; f < flips; f++) frame[Math.floor(rnd() * frame.length)] = Math.floor(rnd() * 256);
      const r = callNeverThrows(() => decodeFrame(frame));
      expectTypedOutcome(r);
      if (r.ok) expect(r.value.password.length % 2).toBe(0);
    }
  });

  it("seed 0xbad: 5,000 random buffers, with and without a valid magic", () => {
    const rnd = mulberry32(0xbad);
    for (let i = 0; i < 5000; i++) {
      const buf = Buffer.alloc(Math.floor(rnd() * 1200));
      for (let j = 0; j < buf.length; j++) buf[j] = Math.floor(rnd() * 256);
      if (i % 2 === 0 && buf.length >= 8) buf.write("PWSF\x01\x00\x28\x00", 0, "latin1");
      expectTypedOutcome(callNeverThrows(() => decodeFrame(buf)));
      expectTypedOutcome(callNeverThrows(() => decodeHeader(buf)));
      expectTypedOutcome(callNeverThrows(() => decodeAck(buf.subarray(0, 16))));
      expectTypedOutcome(callNeverThrows(() => decodeSpoolEnvelope(buf)));
    }
  });

  it("the password comes back in its own buffer, so wiping it leaves the input intact and vice versa", () => {
    const frame = Buffer.from(seeds[0]!);
    const r = decodeFrame(frame);
    if (!r.ok) throw new Error(r.error.message);
    const before = Buffer.from(r.value.password);
    frame.fill(0);
    expect(r.value.password.equals(before)).toBe(true);
    r.value.password.fill(0);
    expect(r.value.password.every((b) => b === 0)).toBe(true);
    expect(r.value.password.buffer.byteLength).toBe(r.value.password.length);
  });
});
