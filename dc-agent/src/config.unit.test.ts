import { loadConfig } from "@pwsync/config";
import { describe, expect, it } from "vitest";
import { agentConfigSchema } from "./config.js";

const minimal = {
  agent: { domainController: "dc01.contoso.example", dataDir: "/var/lib/pwsync" },
  ingest: {
    primary: { address: "ingest1:7443" },
    tls: { caFile: "ca.pem", certFile: "agent.pem", keyFile: "agent.key" },
    sealingPublicKeyFile: "sealing.pub.pem",
  },
  ldap: { baseDn: "DC=contoso,DC=example", bindDn: "CN=svc,DC=contoso,DC=example", bindPasswordFile: "bind.secret" },
};

describe("agent config", () => {
  it("fills the seed's defaults", () => {
    const c = loadConfig(agentConfigSchema, { env: {}, overrides: minimal });
    expect(c.ldap.filter).toBe("(&(samAccountName={0})(objectCategory=person)(objectClass=user))");
    expect(c.ldap.url).toBe("ldaps://localhost:636");
    expect(c.ingest).toMatchObject({ timeoutMs: 30_000, connectionAttempts: 3, connectionFailDelayMs: 60_000 });
  });

  it("takes environment overrides", () => {
    const c = loadConfig(agentConfigSchema, {
      env: { PWSYNC_INGEST__CONNECTION_ATTEMPTS: "5", PWSYNC_INGEST__SECONDARY__ADDRESS: "ingest2:7443" },
      overrides: minimal,
    });
    expect(c.ingest.connectionAttempts).toBe(5);
    expect(c.ingest.secondary?.address).toBe("ingest2:7443");
  });

  it("explains where the seed's Password Reset Retry Limit went", () => {
    expect(() => loadConfig(agentConfigSchema, { env: {}, overrides: { ...minimal, passwordResetRetryLimit: 3 } })).toThrow(
      /server setting now.*executor\.retryLimit/,
    );
  });

  it("names every missing setting", () => {
    expect(() => loadConfig(agentConfigSchema, { env: {}, overrides: {} })).toThrow(/agent:.*\n.*ingest:.*\n.*ldap:/s);
  });
});
