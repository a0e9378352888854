import { describe, expect, it } from "vitest";
import { takeRound } from "./rounds.js";

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
