import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "@pwsync/config";
import { notifierConfigSchema } from "./config.js";

const minimal = {
  database: { url: "postgres://db/pwsync" },
  smtp: { host: "relay.corp.example", from: "pwsync@corp.example" },
  adminRecipients: ["helpdesk@corp.example"],
};

describe("notifier config", () => {
  it("fills the seed's defaults: admin alerts on, end-user alerts off, 5 per 60 minutes", () => {
    const config = loadConfig(notifierConfigSchema, { env: {}, overrides: minimal });
    expect(config.notifyAdmins).toBe(true);
    expect(config.notifyEndUser).toBe(false);
    expect(config.throttle).toEqual({ maxPerWindow: 5, windowMinutes: 60 });
    expect(config.smtp).toMatchObject({ port: 25, secure: false, startTls: "opportunistic", maxAttempts: 8 });
  });

  it("takes overrides from PWSYNC_ environment variables", () => {
    const config = loadConfig(notifierConfigSchema, {
      env: { PWSYNC_THROTTLE__MAX_PER_WINDOW: "3", PWSYNC_NOTIFY_END_USER: "true", PWSYNC_ADMIN_RECIPIENTS: '["a@corp.example","b@corp.example"]' },
      overrides: minimal,
    });
    expect(config.throttle.maxPerWindow).toBe(3);
    expect(config.notifyEndUser).toBe(true);
    expect(config.adminRecipients).toEqual(["a@corp.example", "b@corp.example"]);
  });

  it("refuses admin alerts with nobody to send them to, naming the setting", () => {
    expect(() => loadConfig(notifierConfigSchema, { env: {}, overrides: { ...minimal, adminRecipients: [] } })).toThrow(ConfigError);
    expect(() => loadConfig(notifierConfigSchema, { env: {}, overrides: { ...minimal, adminRecipients: [] } })).toThrow(
      /adminRecipients: notifyAdmins is on but no admin recipient/,
    );
  });

  it("refuses an address that is not one", () => {
    expect(() => loadConfig(notifierConfigSchema, { env: {}, overrides: { ...minimal, adminRecipients: ["helpdesk"] } })).toThrow(/adminRecipients\.0/);
  });
});
