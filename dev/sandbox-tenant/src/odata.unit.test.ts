import { describe, expect, it } from "vitest";
import { ODataFilterError, parseEqualityFilter, parseSelect } from "./odata.js";

describe("parseEqualityFilter", () => {
  it("parses a simple equality", () => {
    expect(parseEqualityFilter("mail eq 'a@b.example'")).toEqual({ property: "mail", value: "a@b.example" });
  });
  it("unescapes doubled quotes", () => {
    expect(parseEqualityFilter("userPrincipalName eq 'o''brien@x.example'").value).toBe("o'brien@x.example");
  });
  it("rejects a literal that tries to break out of the string", () => {
    expect(() => parseEqualityFilter("mail eq 'x' or mail eq 'y'")).toThrow(ODataFilterError);
    expect(() => parseEqualityFilter("mail eq 'unterminated")).toThrow(ODataFilterError);
  });
});

describe("parseSelect", () => {
  it("splits and trims", () => {
    expect(parseSelect("id, mail ,")).toEqual(["id", "mail"]);
    expect(parseSelect(null)).toBeUndefined();
  });
});
