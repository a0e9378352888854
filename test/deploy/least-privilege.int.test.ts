// Least privilege in the compose deployment (issue 10): each consumer mounts only its own
// secrets, only ingest is published beyond loopback, Grafana needs a login, and services use the
// non-owner database role. The per-service secret folders come from running the real dev-init.
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";

const root = path.resolve(import.meta.dirname, "../..");
const compose = parseYaml(readFileSync(path.join(root, "docker-compose.yml"), "utf8"), { merge: true }) as { services: Record<string, any> };
const services = compose.services;
const CONSUMERS = ["ingest", "resolver", "reset-executor", "notifier", "admin", "migrate", "postgres", "grafana", "sandbox-tenant"];
const volumeOf = (name: string) => ((services[name].volumes ?? []) as string[]).filter((v) => v.endsWith(":/run/pwsync:ro") || v.endsWith(":/run/pwsync"));

describe("compose: who mounts which secrets", () => {
  it("gives every consumer one secrets volume of its own, and the shared dev-secrets volume to init alone", () => {
    for (const name of CONSUMERS) expect(volumeOf(name), name).toEqual([`secrets-${name === "sandbox-tenant" ? "sandbox" : name}:/run/pwsync:ro`]);
    const mountingDevSecrets = Object.entries(services)
      .filter(([, s]) => ((s.volumes ?? []) as string[]).some((v) => v.startsWith("dev-secrets:")))
      .map(([n]) => n);
    expect(mountingDevSecrets).toEqual(["init"]);
  });

  it("publishes only ingest beyond loopback", () => {
    const exposed = Object.entries(services).flatMap(([name, s]) => ((s.ports ?? []) as string[]).filter((p) => !p.startsWith("127.0.0.1:")).map(() => name));
    expect(exposed).toEqual(["ingest"]);
  });

  it("makes Grafana require a login (no anonymous viewers), its admin password from a file", () => {
    const env = services.grafana.environment as Record<string, string>;
    expect(env.GF_AUTH_ANONYMOUS_ENABLED).toBe("false");
    expect(env.GF_SECURITY_ADMIN_PASSWORD__FILE).toMatch(/^\/run\/pwsync\//);
  });

  it("connects the services with the service role's URL and only migrate with the owner's", () => {
    for (const name of ["ingest", "resolver", "reset-executor", "notifier", "admin"])
      expect(services[name].environment.FILE__PWSYNC_DATABASE__URL, name).toBe("/run/pwsync/db/service-database-url");
    expect(services.migrate.environment.FILE__PWSYNC_DATABASE__URL).toBe("/run/pwsync/db/database-url");
    expect(services.migrate.environment.PWSYNC_MIGRATE_SERVICE_ROLE).toBe("pwsync_service");
  });
});

describe("dev-init: per-service secret folders", () => {
  let perService: string;
  const files = (service: string): string[] => {
    const out: string[] = [];
    const walk = (dir: string, prefix: string) => {
      for (const name of readdirSync(dir)) {
        const full = path.join(dir, name);
        if (statSync(full).isDirectory()) walk(full, `${prefix}${name}/`);
        else out.push(`${prefix}${name}`);
      }
    };
    walk(path.join(perService, service), "");
    return out.sort();
  };

  beforeAll(async () => {
    const master = mkdtempSync(path.join(tmpdir(), "pwsync-dev-secrets-"));
    perService = mkdtempSync(path.join(tmpdir(), "pwsync-per-service-"));
    for (const name of CONSUMERS) mkdirSync(path.join(perService, name));
    await promisify(execFile)(process.execPath, ["--import", "tsx", "deploy/container/dev-init.ts"], {
      cwd: root,
      env: { ...process.env, PWSYNC_DEV_SECRETS: master, PWSYNC_DEV_SECRETS_PER_SERVICE: perService, PWSYNC_DEV_USERS: "3" },
    });
  }, 60_000);

  it("never hands a CA key, the executor's private key or the owner's DB password to ingest, admin, the workers or Grafana", () => {
    for (const service of ["ingest", "admin", "resolver", "notifier", "grafana"]) {
      const held = files(service);
      expect(
        held.filter((f) => /(^|\/)(ca|agent-ca|admin-ca)\.key$/.test(f)),
        service,
      ).toEqual([]);
      expect(
        held.filter((f) => f.startsWith("keys/")),
        service,
      ).toEqual([]);
      expect(held, service).not.toContain("db/password");
      expect(held, service).not.toContain("db/database-url");
    }
    expect(files("ingest")).toEqual([
      "db/service-database-url",
      "ingest/accepted-key-ids",
      "pki/agent-ca.pem",
      "pki/ca.pem",
      "pki/server.key",
      "pki/server.pem",
    ]);
    expect(files("admin")).toContain("pki/admin-ca.pem");
    expect(files("admin")).not.toContain("pki/agent-ca.pem");
    expect(files("reset-executor").some((f) => /^keys\/[0-9a-f]{16}\.key\.pem$/.test(f))).toBe(true);
    expect(files("grafana")).toEqual(["db/readonly-password", "grafana/admin-password"]);
    expect(files("migrate")).toEqual(["db/database-url", "db/service-password"]);
  });
});
