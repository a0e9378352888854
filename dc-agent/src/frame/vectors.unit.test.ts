import { describe, expect, it } from "vitest";
import { decodeAck, encodeAck, type AckStatus } from "./ack.js";
import { decodeFrame } from "./decodeFrame.js";
import { encodeFrame } from "./encodeFrame.js";
import { decodeSpoolEnvelope, encodeSpoolEnvelope } from "./spoolEnvelope.js";
import { loadCaptured, loadVectors, vectorBytes } from "./vectorFixtures.js";

const vectors = loadVectors();

describe("shared test vectors (lsa-filter/test/vectors/vectors.json)", () => {
  it("has the vector files the index names, with the same bytes as its hex", () => {
    expect(vectors.length).toBeGreaterThan(20);
    for (const v of vectors) expect(vectorBytes(v).toString("hex"), v.name).toBe(v.hex);
  });

  for (const v of vectors.filter((x) => x.expect === "ok")) {
    it(`decodes ${v.name} (${v.note})`, () => {
      const d = v.decoded!;
      const r = decodeFrame(vectorBytes(v));
      if (!r.ok) throw new Error(`${v.name}: ${r.error.code} ${r.error.message}`);
      expect(r.value.accountName).toBe(d.accountName);
      expect(r.value.accountNameUtf16le.toString("hex")).toBe(d.accountNameHex);
      expect(r.value.password.toString("hex")).toBe(d.passwordHex);
      expect(r.value.sequence).toBe(BigInt(d.sequence));
      expect(r.value.capturedAtFiletime).toBe(BigInt(d.capturedAtFiletime));
      expect(r.value.capturedAt.toISOString()).toBe(d.capturedAt);
    });

    it(`re-encodes ${v.name} to the identical bytes`, () => {
      const d = v.decoded!;
      const r = encodeFrame({
        accountUtf16le: Buffer.from(d.accountNameHex, "hex"),
        passwordUtf16le: Buffer.from(d.passwordHex, "hex"),
        sequence: BigInt(d.sequence),
        capturedAtFiletime: BigInt(d.capturedAtFiletime),
      });
      if (!r.ok) throw new Error(r.error.message);
      expect(r.value.toString("hex")).toBe(v.hex);
    });
  }

  for (const v of vectors.filter((x) => x.expect === "error")) {
    it(`rejects ${v.name} with ${v.error!.code}${v.error!.field ? `/${v.error!.field}` : ""}`, () => {
      const r = decodeFrame(vectorBytes(v));
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.error.code).toBe(v.error!.code);
      expect(r.error.field).toBe(v.error!.field);
    });
  }

  for (const v of vectors.filter((x) => x.expect === "ack")) {
    it(`decodes and re-encodes ${v.name}`, () => {
      const r = decodeAck(vectorBytes(v));
      if (!r.ok) throw new Error(r.error.message);
      expect(r.value).toEqual({ status: v.ack!.status, sequence: BigInt(v.ack!.sequence) });
      expect(encodeAck({ status: v.ack!.status as AckStatus, sequence: BigInt(v.ack!.sequence) }).toString("hex")).toBe(v.hex);
    });
  }

  for (const v of vectors.filter((x) => x.expect === "spool")) {
    it(`opens the envelope of ${v.name}`, () => {
      const r = decodeSpoolEnvelope(vectorBytes(v));
      if (!r.ok) throw new Error(r.error.message);
      expect(r.value.blob.toString("hex")).toBe(v.spool!.blobHex);
      expect(encodeSpoolEnvelope(r.value.blob, r.value.version).toString("hex")).toBe(v.hex);
    });
  }
});

describe("frames captured from the C filter under wine (.state/lsa-filter/captured)", () => {
  const captured = loadCaptured();
  const byName = new Map(vectors.map((v) => [v.name, v]));

  it.skipIf(captured.length === 0)("decodes every captured frame to the vector the harness fed the filter", () => {
    for (const c of captured) {
      const v = byName.get(c.vectorName);
      const r = decodeFrame(c.bytes);
      if (!r.ok) throw new Error(`${c.file}: ${r.error.code} ${r.error.message}`);
      if (v === undefined) continue; // stress frames: decoding cleanly is the check
      expect(r.value.accountNameUtf16le.toString("hex"), c.file).toBe(v.decoded!.accountNameHex);
      expect(r.value.password.toString("hex"), c.file).toBe(v.decoded!.passwordHex);
      expect(r.value.sequence > 0n).toBe(true);
    }
  });
});
