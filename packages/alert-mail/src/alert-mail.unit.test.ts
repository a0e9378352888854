import { describe, expect, it } from "vitest";
import { alertMailSettingsSchema } from "./settings.js";
import { checkTemplate, DEFAULT_TEMPLATES, render, TemplateError, type AlertFacts } from "./templates.js";

const relay = { host: "relay.corp.example", from: "PwSync@Corp.Example" };

describe("alert mail settings", () => {
  it("read the relay, recipients and templates from a whole notifier section, ignoring the notifier's other settings", () => {
    const settings = alertMailSettingsSchema.parse({ smtp: relay, adminRecipients: ["Helpdesk@Corp.Example"], notifyEndUser: true, throttle: {} });
    expect(settings).toEqual({
      smtp: { host: "relay.corp.example", from: "pwsync@corp.example", port: 25, secure: false, startTls: "opportunistic", timeoutMs: 15_000, maxAttempts: 8 },
      adminRecipients: ["helpdesk@corp.example"],
    });
  });

  it("refuse an SMTP user without a password, naming smtp.pass", () => {
    const parsed = alertMailSettingsSchema.safeParse({ smtp: { ...relay, user: "pwsync" } });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues.map((i) => [i.path.join("."), i.message])).toEqual([
      ["smtp.pass", "smtp.user and smtp.pass go together: give both or neither"],
    ]);
  });
});

describe("alert templates", () => {
  const facts = { changeId: "c-1", account: "jdoe", reason: "complexity" } as AlertFacts;

  it("fill every placeholder, writing (unknown) for a fact that is missing", () => {
    const mail = render(DEFAULT_TEMPLATES, "admin", facts);
    expect(mail.subject).toBe("Password sync failed for jdoe: complexity");
    expect(mail.text).toContain("Domain controller:  (unknown)");
    expect(mail.text).not.toContain("{{");
  });

  it("refuse a template that asks for a fact no alert carries", () => {
    expect(() => checkTemplate("end-user-body", "Your password was {{ password }}")).toThrow(TemplateError);
  });
});
