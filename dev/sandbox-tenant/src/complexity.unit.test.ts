import { describe, expect, it } from "vitest";
import { meetsEntraComplexity } from "./complexity.js";

describe("meetsEntraComplexity", () => {
  it.each([
    ["Abcdefg1", true],
    ["abcdefg1!", true],
    ["ABCDEFG1!", true],
    ["abcdefgh", false],
    ["abcdefg1", false],
    ["Ab1!", false],
    ["Aa1!".repeat(64), true],
    [`${"Aa1!".repeat(64)}x`, false],
  ])("%s -> %s", (candidate, expected) => {
    expect(meetsEntraComplexity(candidate)).toBe(expected);
  });
});
