import { describe, expect, it } from "vitest";
import { odataStringLiteral } from "./odata.js";

describe("odataStringLiteral", () => {
  it("doubles quotes so the value cannot close the literal", () => {
    expect(odataStringLiteral("o'brien")).toBe("'o''brien'");
    expect(odataStringLiteral("x' or mail eq 'y")).toBe("'x'' or mail eq ''y'");
  });
});
