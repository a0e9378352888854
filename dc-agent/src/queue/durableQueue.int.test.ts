import { appendFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { capturingLogger } from "../test-support/capturingLogger.js";
import { DurableQueue } from "./durableQueue.js";
import { encodeChangeRecord } from "./record.js";

const open: DurableQueue[] = [];
async function openQueue(dir: string, segmentBytes = 1 << 20) {
  const log = capturingLogger();
  const queue = await DurableQueue.open(dir, { segmentBytes, logger: log.logger });
  open.push(queue);
  return { queue, log };
}
afterEach(async () => {
  for (const q of open.splice(0)) await q.close().catch(() => {});
});

const body = (i: number) => Buffer.from(`sealed-change-${i}`);
const freshDir = () => mkdtempSync(path.join(tmpdir(), "dc-agent-queue-"));
const segments = (dir: string) =>
  readdirSync(dir)
    .filter((n) => n.endsWith(".seg"))
    .sort();

describe("durable queue", () => {
  it("returns appended entries in order after a reopen, without the ones marked done", async () => {
    const dir = freshDir();
    const { queue } = await openQueue(dir);
    const seqs = await Promise.all(Array.from({ length: 10 }, (_, i) => queue.append(body(i))));
    expect(seqs).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await queue.markDone(0, "committed");
    await queue.markDone(3, "duplicate");
    await queue.close();

    const { queue: again } = await openQueue(dir);
    expect(again.depth).toBe(8);
    const entries = again.read(-1, 100);
    expect(entries.map((e) => e.seq)).toEqual([1, 2, 4, 5, 6, 7, 8, 9]);
    expect(entries.map((e) => e.change.toString())).toEqual([1, 2, 4, 5, 6, 7, 8, 9].map((i) => body(i).toString()));
    expect(again.head()?.seq).toBe(1);
    expect(await again.append(body(10))).toBe(10);
  });

  it("reads in batches that continue where the previous one stopped", async () => {
    const { queue } = await openQueue(freshDir(), 4096);
    for (let i = 0; i < 300; i++) await queue.append(body(i));
    const seen: number[] = [];
    let after = -1;
    for (;;) {
      const batch = queue.read(after, 7);
      if (batch.length === 0) break;
      seen.push(...batch.map((e) => e.seq));
      after = batch[batch.length - 1]!.seq;
    }
    expect(seen).toEqual(Array.from({ length: 300 }, (_, i) => i));
  });

  it("skips a torn last write with a log line and keeps working", async () => {
    const dir = freshDir();
    const { queue } = await openQueue(dir);
    for (let i = 0; i < 3; i++) await queue.append(body(i));
    await queue.close();
    const last = path.join(dir, segments(dir).at(-1)!);
    const torn = encodeChangeRecord(3, Date.now(), body(3));
    appendFileSync(last, torn.subarray(0, torn.length - 5));

    const { queue: again, log } = await openQueue(dir);
    expect(again.read(-1, 10).map((e) => e.seq)).toEqual([0, 1, 2]);
    expect(log.records().some((r) => r.level === "warn" && String(r.msg).includes("torn write"))).toBe(true);
    const next = await again.append(body(4));
    expect(next).toBeGreaterThanOrEqual(3);
    await again.close();
    const { queue: third } = await openQueue(dir);
    expect(third.read(-1, 10).map((e) => e.change.toString())).toEqual([body(0), body(1), body(2), body(4)].map(String));
  });

  it("a last segment holding only a torn first record is cut back, so what is appended next is read at once, not after a restart", async () => {
    const dir = freshDir();
    const { queue } = await openQueue(dir);
    for (let i = 0; i < 3; i++) await queue.append(body(i));
    await queue.close();
    // The agent stopped while writing the first record of a new segment (seq 3).
    const torn = encodeChangeRecord(3, Date.now(), body(3));
    writeFileSync(path.join(dir, "0000000000000003.seg"), torn.subarray(0, torn.length - 5));

    const { queue: again, log } = await openQueue(dir);
    expect(again.read(-1, 10).map((e) => e.seq)).toEqual([0, 1, 2]);
    const next = await again.append(body(4));
    expect(again.read(2, 10).map((e) => [e.seq, e.change.toString()])).toEqual([[next, body(4).toString()]]);
    await again.close();
    const { queue: third } = await openQueue(dir);
    expect(third.read(-1, 10).map((e) => e.change.toString())).toEqual([body(0), body(1), body(2), body(4)].map(String));
    expect(log.records().some((r) => r.level === "error")).toBe(false);
  });

  it("skips a damaged record in the middle of a segment and keeps the records after it", async () => {
    const dir = freshDir();
    const { queue } = await openQueue(dir);
    for (let i = 0; i < 5; i++) await queue.append(body(i));
    await queue.close();
    const file = path.join(dir, segments(dir)[0]!);
    const bytes = readFileSync(file);
    const recordBytes = encodeChangeRecord(0, 0, body(0)).length;
    bytes[recordBytes * 2 + 12]! ^= 0xff; // inside record seq 2's payload: its checksum no longer matches
    writeFileSync(file, bytes);

    const { queue: again, log } = await openQueue(dir);
    expect(again.read(-1, 10).map((e) => e.seq)).toEqual([0, 1, 3, 4]);
    expect(log.records().some((r) => r.level === "error" && String(r.msg).includes("corrupt bytes"))).toBe(true);
  });

  it("deletes segments whose entries are all done, and never reuses a seq", async () => {
    const dir = freshDir();
    const { queue } = await openQueue(dir, 4096);
    for (let i = 0; i < 200; i++) await queue.append(body(i));
    expect(segments(dir).length).toBeGreaterThan(1);
    for (let i = 0; i < 200; i++) await queue.markDone(i, "committed");
    expect(queue.depth).toBe(0);
    expect(segments(dir).length).toBe(1);
    await queue.close();
    const { queue: again } = await openQueue(dir, 4096);
    expect(again.depth).toBe(0);
    expect(await again.append(body(200))).toBe(200);
  });

  it("keeps a segment while one entry in it is still live", async () => {
    const dir = freshDir();
    const { queue } = await openQueue(dir, 4096);
    for (let i = 0; i < 200; i++) await queue.append(body(i));
    for (let i = 1; i < 200; i++) await queue.markDone(i, "committed");
    expect(segments(dir).length).toBeGreaterThan(1);
    expect(queue.read(-1, 10).map((e) => e.seq)).toEqual([0]);
    await queue.markDone(0, "quarantined");
    expect(segments(dir).length).toBe(1);
  });
});
