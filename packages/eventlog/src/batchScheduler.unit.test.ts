import { describe, expect, it } from "vitest";
import { runBatch, STOPPED, type BatchPlan } from "./batchScheduler.js";

// The batch scheduler alone, without Postgres: handlers are promises the test settles by hand,
// commits are recorded in order.

interface Ev {
  id: number;
  key: string;
}

/** A handler run the test finishes when it wants. */
class Gate {
  started: number[] = [];
  private readonly waiting = new Map<number, (value: string | typeof STOPPED) => void>();

  run = (event: Ev) =>
    new Promise<string | typeof STOPPED>((resolve) => {
      this.started.push(event.id);
      this.waiting.set(event.id, resolve);
    });

  finish(id: number, value: string | typeof STOPPED = `r${id}`): void {
    const resolve = this.waiting.get(id);
    if (!resolve) throw new Error(`event ${id} has not started`);
    this.waiting.delete(id);
    resolve(value);
  }
}

const flush = async () => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};

function plan(events: Ev[], gate: Gate, overrides: Partial<BatchPlan<Ev, string>> = {}): { plan: BatchPlan<Ev, string>; commits: number[][] } {
  const commits: number[][] = [];
  return {
    commits,
    plan: {
      events,
      keyOf: (e) => e.key,
      concurrency: 4,
      run: gate.run,
      stopping: () => false,
      commit: async (done) => {
        commits.push(done.map((d) => d.event.id));
      },
      ...overrides,
    },
  };
}

describe("runBatch", () => {
  it("given events of different keys, when run, then up to `concurrency` handlers run at once", async () => {
    const gate = new Gate();
    const events = [0, 1, 2, 3, 4].map((id) => ({ id, key: `k${id}` }));
    const { plan: p } = plan(events, gate, { concurrency: 2 });
    const batch = runBatch(p);
    await flush();
    expect(gate.started).toEqual([0, 1]);
    gate.finish(1);
    await flush();
    expect(gate.started).toEqual([0, 1, 2]);
    for (const id of [0, 2]) gate.finish(id);
    await flush();
    for (const id of [3, 4]) gate.finish(id);
    expect(await batch).toBe(5);
  });

  it("given two events of one key, when the first finishes, then the second starts only after the first is committed", async () => {
    const gate = new Gate();
    const events = [
      { id: 0, key: "u" },
      { id: 1, key: "u" },
    ];
    let releaseCommit = () => {};
    const { plan: p, commits } = plan(events, gate, {
      commit: async (done) => {
        await new Promise<void>((r) => (releaseCommit = r));
        commits.push(done.map((d) => d.event.id));
      },
    });
    const batch = runBatch(p);
    await flush();
    gate.finish(0);
    await flush();
    expect(gate.started).toEqual([0]);
    releaseCommit();
    await flush();
    expect(gate.started).toEqual([0, 1]);
    gate.finish(1);
    await flush();
    releaseCommit();
    expect(await batch).toBe(2);
    expect(commits).toEqual([[0], [1]]);
  });

  it("given later events finished first, when the earliest finishes, then they are committed in log order, together", async () => {
    const gate = new Gate();
    const events = [0, 1, 2].map((id) => ({ id, key: `k${id}` }));
    const { plan: p, commits } = plan(events, gate);
    const batch = runBatch(p);
    await flush();
    gate.finish(2);
    gate.finish(1);
    await flush();
    expect(commits).toEqual([]);
    gate.finish(0);
    expect(await batch).toBe(3);
    expect(commits).toEqual([[0, 1, 2]]);
  });

  it("given a stop, when events wait, then only those up to the furthest started finish and commit; none after it starts", async () => {
    const gate = new Gate();
    let stopping = false;
    const events = [0, 1, 2, 3].map((id) => ({ id, key: `k${id}` }));
    const { plan: p, commits } = plan(events, gate, { concurrency: 2, stopping: () => stopping });
    const batch = runBatch(p);
    await flush();
    expect(gate.started).toEqual([0, 1]);
    stopping = true;
    gate.finish(1);
    gate.finish(0);
    expect(await batch).toBe(2);
    expect(gate.started).toEqual([0, 1]);
    expect(commits.flat()).toEqual([0, 1]);
  });

  it("given a handler that gives up (STOPPED), when the batch ends, then nothing from it on is committed", async () => {
    const gate = new Gate();
    const events = [0, 1, 2].map((id) => ({ id, key: `k${id}` }));
    const { plan: p, commits } = plan(events, gate);
    const batch = runBatch(p);
    await flush();
    gate.finish(0);
    gate.finish(1, STOPPED);
    gate.finish(2);
    expect(await batch).toBe(1);
    expect(commits.flat()).toEqual([0]);
  });

  it("given a failing commit, when it throws, then the batch rejects and no later event of the same key starts", async () => {
    const gate = new Gate();
    const events = [
      { id: 0, key: "u" },
      { id: 1, key: "u" },
    ];
    const { plan: p } = plan(events, gate, {
      commit: async () => {
        throw new Error("checkpoint moved");
      },
    });
    const batch = runBatch(p);
    await flush();
    gate.finish(0);
    await expect(batch).rejects.toThrow("checkpoint moved");
    expect(gate.started).toEqual([0]);
  });
});
