import { describe, expect, it } from "vitest";
import { singleMailbox } from "./address.js";

describe("singleMailbox", () => {
  it.each([
    ["bob@contoso.example", "bob@contoso.example"],
    ["  Bob.Smith+alerts@Contoso.Example ", "bob.smith+alerts@contoso.example"],
  ])("given %j, then it is the one mailbox %j", (input, expected) => {
    expect(singleMailbox(input)).toBe(expected);
  });

  it.each([
    ["a list hiding a second recipient (the reported attack)", "bob,attacker@evil.example"],
    ["two addresses", "bob@contoso.example, attacker@evil.example"],
    ["a semicolon list", "bob@contoso.example;attacker@evil.example"],
    ["a display name pointing elsewhere", "bob@contoso.example <attacker@evil.example>"],
    ["a group", "team: bob@contoso.example, attacker@evil.example;"],
    ["a comment", "bob@contoso.example (attacker@evil.example)"],
    ["a header injection", "bob@contoso.example\r\nBcc: attacker@evil.example"],
    ["no domain", "bob"],
    ["a single-label domain", "bob@localhost"],
    ["an empty value", ""],
    ["two @", "bob@evil@contoso.example"],
    ["a quoted local part", '"bob,x"@contoso.example'],
  ])("given %s, then there is no address", (_name, input) => {
    expect(singleMailbox(input)).toBeUndefined();
  });
});
