import { describe, expect, it } from "vitest";
import { GroupedRequests, takeRound } from "./grouped-requests.js";

const item = (group: string, user: string, n: number) => ({ group, user, n });
const take = (waiting: ReturnType<typeof item>[], max?: number) =>
  takeRound(
    waiting,
    (w) => w.group,
    (w) => w.user,
    max,
  );

describe("takeRound: which waiting requests share one statement", () => {
  it("takes every request of distinct users in order", () => {
    const waiting = [item("g", "a", 1), item("g", "b", 2), item("g", "c", 3)];
    expect(take(waiting)).toEqual({ round: waiting, rest: [] });
  });

  it("leaves a second request of the same user for the next round, in order", () => {
    const { round, rest } = take([item("g", "a", 1), item("g", "b", 2), item("g", "a", 3), item("g", "a", 4)]);
    expect(round.map((w) => w.n)).toEqual([1, 2]);
    expect(rest.map((w) => w.n)).toEqual([3, 4]);
    expect(take(rest).round.map((w) => w.n)).toEqual([3]);
  });

  it("serves one consumer group per round, the first request's", () => {
    const { round, rest } = take([item("g2", "a", 1), item("g", "b", 2), item("g2", "c", 3)]);
    expect(round.map((w) => w.n)).toEqual([1, 3]);
    expect(rest.map((w) => w.n)).toEqual([2]);
  });

  it("caps the round's size", () => {
    const { round, rest } = take([item("g", "a", 1), item("g", "b", 2), item("g", "c", 3)], 2);
    expect(round.map((w) => w.n)).toEqual([1, 2]);
    expect(rest.map((w) => w.n)).toEqual([3]);
  });

  it("takes nothing from nothing", () => {
    expect(take([])).toEqual({ round: [], rest: [] });
  });
});

describe("GroupedRequests", () => {
  /** A server that records each round and answers when told to. */
  function recordingServer(answer: (n: number) => number | Error = (n) => n * 10) {
    const rounds: number[][] = [];
    let release: () => void = () => {};
    let gate = Promise.resolve();
    const hold = () => {
      gate = new Promise<void>((r) => {
        release = r;
      });
    };
    const serve = async (round: number[]) => {
      rounds.push(round);
      await gate;
      return round.map(answer);
    };
    return { rounds, serve, hold, release: () => release() };
  }

  it("given an idle server, when one request is asked, then it is served at once on its own", async () => {
    const server = recordingServer();
    const grouped = new GroupedRequests<number, number>(server.serve);
    expect(await grouped.ask(1)).toBe(10);
    expect(server.rounds).toEqual([[1]]);
  });

  it("given a round in flight, when more requests are asked, then they are served together in the next round, each with its own answer", async () => {
    const server = recordingServer();
    const grouped = new GroupedRequests<number, number>(server.serve);
    server.hold();
    const first = grouped.ask(1);
    const others = [grouped.ask(2), grouped.ask(3), grouped.ask(4)];
    server.release();
    expect(await Promise.all([first, ...others])).toEqual([10, 20, 30, 40]);
    expect(server.rounds).toEqual([[1], [2, 3, 4]]);
  });

  it("given two requests with the same key, when asked together, then they go in different rounds", async () => {
    const server = recordingServer();
    const grouped = new GroupedRequests<number, number>(server.serve, { keyOf: (n) => String(n % 2) });
    server.hold();
    const asked = [1, 2, 3, 4].map((n) => grouped.ask(n));
    server.release();
    await Promise.all(asked);
    expect(server.rounds).toEqual([[1], [2, 3], [4]]);
  });

  it("given an answer that is an Error, then only that request is rejected", async () => {
    const server = recordingServer((n) => (n === 3 ? new Error("three refused") : n));
    const grouped = new GroupedRequests<number, number>(server.serve);
    server.hold();
    const asked = [1, 2, 3, 4].map((n) => grouped.ask(n));
    server.release();
    const settled = await Promise.allSettled(asked);
    expect(settled.map((s) => s.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled"]);
  });

  it("given a round that throws, then all its requests are rejected, or with retryAlone each is served alone and only the bad one fails", async () => {
    const failWithThree = async (round: number[]) => {
      if (round.includes(3)) throw new Error("round failed");
      return round;
    };
    for (const retryAlone of [false, true]) {
      const grouped = new GroupedRequests<number, number>(failWithThree, { retryAlone });
      const blocker = grouped.ask(0);
      const asked = [1, 2, 3].map((n) => grouped.ask(n));
      await blocker;
      const settled = (await Promise.allSettled(asked)).map((s) => s.status);
      expect(settled).toEqual(retryAlone ? ["fulfilled", "fulfilled", "rejected"] : ["rejected", "rejected", "rejected"]);
    }
  });
});

describe("GroupedRequests with several rounds in flight", () => {
  it("given one round in flight and room for two, when another request is asked, then it leaves at once on its own", async () => {
    const started: number[][] = [];
    const gates: Array<() => void> = [];
    const serve = (round: number[]) => {
      started.push(round);
      return new Promise<number[]>((resolve) => gates.push(() => resolve(round)));
    };
    const grouped = new GroupedRequests<number, number>(serve, { maxRoundsInFlight: 2 });
    const first = grouped.ask(1);
    const second = grouped.ask(2);
    expect(started).toEqual([[1], [2]]);
    const waiting = [grouped.ask(3), grouped.ask(4), grouped.ask(5)];
    expect(started).toHaveLength(2);
    gates[0]!();
    await first;
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([[1], [2], [3, 4, 5]]);
    gates[1]!();
    gates[2]!();
    expect(await Promise.all([second, ...waiting])).toEqual([2, 3, 4, 5]);
  });

  it("given a round size limit, when more are waiting, then the next round takes at most that many", async () => {
    const started: number[][] = [];
    let open: () => void = () => {};
    const gate = new Promise<void>((r) => (open = r));
    const grouped = new GroupedRequests<number, number>(
      async (round) => {
        started.push(round);
        await gate;
        return round;
      },
      { maxPerRound: 2 },
    );
    const asked = [1, 2, 3, 4].map((n) => grouped.ask(n));
    open();
    await Promise.all(asked);
    expect(started).toEqual([[1], [2, 3], [4]]);
  });
});

describe("GroupedRequests gathering one turn", () => {
  it("given requests asked in the same turn, when a slot is free, then they leave together in one round, and a later lone one on its own", async () => {
    const started: number[][] = [];
    const grouped = new GroupedRequests<number, number>(
      async (round) => {
        started.push(round);
        return round;
      },
      { gatherOneTurn: true, maxRoundsInFlight: 4 },
    );
    expect(await Promise.all([grouped.ask(1), grouped.ask(2), grouped.ask(3)])).toEqual([1, 2, 3]);
    expect(await grouped.ask(4)).toBe(4);
    expect(started).toEqual([[1, 2, 3], [4]]);
  });
});
