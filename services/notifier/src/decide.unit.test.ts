import { describe, expect, it } from "vitest";
import { decide, outcomeKey, type NotifyPolicy, type Situation, type ThrottleWindow } from "./decide.js";

const NOW = new Date("2025-03-01T10:00:00Z");
const minutes = (n: number) => new Date(NOW.getTime() + n * 60_000);

const policy: NotifyPolicy = {
  notifyAdmins: true,
  notifyEndUser: true,
  adminRecipients: ["Helpdesk@Corp.example", "secops@corp.example"],
  endUserAddressFrom: ["mail", "userPrincipalName"],
  throttle: { maxPerWindow: 2, windowMinutes: 60 },
};

function given(overrides: Partial<Situation> = {}): Situation {
  return {
    aboutEventType: "ResetFailed",
    endUser: { mail: "J.Doe@corp.example", userPrincipalName: "jdoe@corp.onmicrosoft.com" },
    alreadyRecorded: new Set(),
    throttle: new Map(),
    now: NOW,
    ...overrides,
  };
}

describe("decide", () => {
  it("given a fresh failure, sends to every admin and to the end user's mail, lower-cased", () => {
    expect(decide(policy, given())).toEqual([
      { kind: "send", role: "admin", recipient: "helpdesk@corp.example" },
      { kind: "send", role: "admin", recipient: "secops@corp.example" },
      { kind: "send", role: "endUser", recipient: "j.doe@corp.example" },
    ]);
  });

  it("given end-user alerts are off, only admins are chosen", () => {
    expect(decide({ ...policy, notifyEndUser: false }, given()).map((d) => d.role)).toEqual(["admin", "admin"]);
  });

  it("given admin alerts are off, only the end user is chosen", () => {
    expect(decide({ ...policy, notifyAdmins: false }, given())).toEqual([{ kind: "send", role: "endUser", recipient: "j.doe@corp.example" }]);
  });

  it("given no mail, falls back to a UPN that looks like an address", () => {
    const decisions = decide({ ...policy, notifyAdmins: false }, given({ endUser: { mail: "", userPrincipalName: "jdoe@corp.onmicrosoft.com" } }));
    expect(decisions).toEqual([{ kind: "send", role: "endUser", recipient: "jdoe@corp.onmicrosoft.com" }]);
  });

  it("given a mail attribute that is an address list, it is no address: the UPN is used, never the list", () => {
    const decisions = decide(
      { ...policy, notifyAdmins: false },
      given({ endUser: { mail: "bob,attacker@evil.example", userPrincipalName: "bob@corp.example" } }),
    );
    expect(decisions).toEqual([{ kind: "send", role: "endUser", recipient: "bob@corp.example" }]);
  });

  it("given no usable address, says so instead of silently skipping", () => {
    const decisions = decide(
      { ...policy, notifyAdmins: false, endUserAddressFrom: ["mail"] },
      given({ endUser: { mail: "", userPrincipalName: "jdoe@corp.example" } }),
    );
    expect(decisions).toEqual([{ kind: "noAddress", role: "endUser", reason: "the account has no mail to send to" }]);
  });

  it("given the stream already records an outcome for a recipient, does not decide for it again", () => {
    const alreadyRecorded = new Set([outcomeKey("ResetFailed", "admin", "HELPDESK@corp.example")]);
    expect(decide(policy, given({ alreadyRecorded })).map((d) => (d.kind === "noAddress" ? "" : d.recipient))).toEqual([
      "secops@corp.example",
      "j.doe@corp.example",
    ]);
  });

  it("given an outcome about a different failure event, still notifies about this one", () => {
    const alreadyRecorded = new Set([outcomeKey("ResolutionFailed", "admin", "helpdesk@corp.example")]);
    expect(decide(policy, given({ alreadyRecorded }))).toHaveLength(3);
  });

  it("given a recipient at the limit within the window, throttles until the window ends", () => {
    const throttle = new Map<string, ThrottleWindow>([["helpdesk@corp.example", { windowStartedAt: minutes(-20), sentInWindow: 2 }]]);
    expect(decide({ ...policy, notifyEndUser: false }, given({ throttle }))).toEqual([
      { kind: "throttle", role: "admin", recipient: "helpdesk@corp.example", throttledUntil: minutes(40) },
      { kind: "send", role: "admin", recipient: "secops@corp.example" },
    ]);
  });

  it("given the recipient's window has ended, starts a new one and sends", () => {
    const throttle = new Map<string, ThrottleWindow>([["helpdesk@corp.example", { windowStartedAt: minutes(-60), sentInWindow: 99 }]]);
    expect(decide({ ...policy, notifyEndUser: false }, given({ throttle }))[0]).toEqual({ kind: "send", role: "admin", recipient: "helpdesk@corp.example" });
  });

  it("given the same address as admin and end user, counts both against one limit", () => {
    const throttle = new Map<string, ThrottleWindow>([["j.doe@corp.example", { windowStartedAt: minutes(-1), sentInWindow: 1 }]]);
    const decisions = decide({ ...policy, adminRecipients: ["j.doe@corp.example"] }, given({ throttle }));
    expect(decisions.map((d) => d.kind)).toEqual(["send", "throttle"]);
  });

  it("given duplicate admin addresses in config, mails each address once", () => {
    expect(decide({ ...policy, notifyEndUser: false, adminRecipients: ["a@corp.example", "A@corp.example"] }, given())).toHaveLength(1);
  });
});
