import { describe, expect, it } from "vitest";
import { AgentRateLimiter } from "./rate-limit.js";
import { agentScopesFromConfig, decideScope } from "./scope.js";

const scopes = agentScopesFromConfig({ DC01: ["Contoso.Example", "@mail.contoso.example"] });

describe("decideScope", () => {
  it("given a UPN and mail inside the agent's domains (any case), then it is in scope", () => {
    expect(decideScope(scopes, "dc01", { userPrincipalName: "Bob@CONTOSO.example", mail: "bob@mail.contoso.example" })).toEqual({
      ok: true,
      domains: ["contoso.example", "mail.contoso.example"],
    });
  });
  it("given a UPN of another domain, then it is out of scope, naming the field", () => {
    expect(decideScope(scopes, "dc01", { userPrincipalName: "ceo@fabrikam.example", mail: "" })).toMatchObject({
      ok: false,
      reason: "OUT_OF_SCOPE",
      detail: expect.stringMatching(/user_principal_name domain "fabrikam.example"/),
    });
  });
  it("given a mail of another domain next to an in-scope UPN, then it is out of scope", () => {
    expect(decideScope(scopes, "dc01", { userPrincipalName: "bob@contoso.example", mail: "ceo@fabrikam.example" })).toMatchObject({
      ok: false,
      reason: "OUT_OF_SCOPE",
    });
  });
  it("given a subdomain trick, then it is out of scope (exact domains only)", () => {
    expect(decideScope(scopes, "dc01", { userPrincipalName: "x@evilcontoso.example", mail: "" })).toMatchObject({ ok: false });
    expect(decideScope(scopes, "dc01", { userPrincipalName: "x@contoso.example.evil", mail: "" })).toMatchObject({ ok: false });
  });
  it("given an agent without a configured scope, then nothing is in scope", () => {
    expect(decideScope(scopes, "dc02", { userPrincipalName: "bob@contoso.example", mail: "" })).toMatchObject({ ok: false, reason: "NO_SCOPE" });
  });
});

describe("AgentRateLimiter", () => {
  it("given a burst of 2 at 10/s, when 3 changes come at once, then the third waits 100 ms; agents do not share buckets", () => {
    const limiter = new AgentRateLimiter({ perSecond: 10, burst: 2 });
    expect([limiter.take("dc01", 0), limiter.take("dc01", 0), limiter.take("dc01", 0)]).toEqual([0, 0, 100]);
    expect(limiter.take("dc02", 0)).toBe(0);
    expect(limiter.take("dc01", 100)).toBe(0);
  });
});
