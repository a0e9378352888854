// Compiles the server-side entry points to JavaScript: what the container image runs
// (`node dist/<name>.js`), so no TypeScript compiler or loader ships or runs in production.
//
//   npm run build                 # dist/ (production) and dist-dev/ (dev stand-ins)
//   node scripts/build.mjs --outdir /tmp/x --dev-outdir /tmp/y
//
// Why esbuild rather than `tsc` emit: every @pwsync/* workspace package exports its TypeScript
// source (`"exports": "./src/index.ts"`), which is what tsx and vitest use in development.
// A per-file tsc emit would need a second, compiled exports map in every package.json (or a
// custom resolution condition) to be runnable; esbuild bundles each entry point together with
// the workspace code it reaches, in one step, from the same sources. Type checking stays
// with `tsc -p tsconfig.json` (esbuild only strips types). Third-party packages stay external
// (loaded from node_modules as in development), so the image's `npm ci --omit=dev` decides
// what ships and nothing of a library's behaviour changes by bundling it.
//
// The build also fails when a production bundle reaches code that must not ship (the sandbox
// tenant, the SMTP catcher, the dev launcher, test helpers, embedded Postgres) or imports a
// package that is not a production dependency in package.json.
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: {
    outdir: { type: "string", default: path.join(root, "dist") },
    "dev-outdir": { type: "string", default: path.join(root, "dist-dev") },
    "no-dev": { type: "boolean", default: false },
  },
});

// Entry points (scripts/entry-points.json), `dist/<name>.js` each:
//   production: the image's commands, plus the admin CLI `pwsync` (dist/pwsync.js) for
//               `docker compose exec admin node dist/pwsync.js status`;
//   dev:        the dev PKI job and the stand-ins, only in the dev image (`dist-dev/<name>.js`).
const entryPoints = JSON.parse(readFileSync(path.join(root, "scripts/entry-points.json"), "utf8"));
const productionEntries = entryPoints.production;
const devEntries = entryPoints.dev;
const neverInProduction = [/^dev\//, /^packages\/(devstack|testkit|local-postgres)\//, /\.test\.ts$/, /\/test-(support|fixtures)\//];

const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));
const runtimeDependencies = new Set(Object.keys(pkg.dependencies ?? {}));
const packageName = (spec) => (spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]);

/** Bundle @pwsync/* workspace code; leave every other bare import to node_modules at run time. */
const externalPackages = {
  name: "external-packages",
  setup(build) {
    build.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith("@pwsync/")) return undefined;
      return { path: args.path, external: true };
    });
  },
};

async function bundle(entries, outdir) {
  // Not emptied first: dist/ is shared with other build outputs (npm run package:windows).
  mkdirSync(outdir, { recursive: true });
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: Object.fromEntries(Object.entries(entries).map(([name, file]) => [name, path.join(root, file)])),
    outdir,
    bundle: true,
    splitting: false,
    platform: "node",
    format: "esm",
    target: "node20",
    sourcemap: "linked",
    sourcesContent: false,
    metafile: true,
    logLevel: "warning",
    plugins: [externalPackages],
  });
  // Bundles are ES modules whatever package.json they end up next to.
  writeFileSync(path.join(outdir, "package.json"), `${JSON.stringify({ type: "module" })}\n`);
  return result.metafile;
}

function check(metafile, label, { production }) {
  const problems = [];
  for (const [out, info] of Object.entries(metafile.outputs)) {
    if (!out.endsWith(".js")) continue;
    for (const input of Object.keys(info.inputs)) {
      if (production && neverInProduction.some((re) => re.test(input))) problems.push(`${out} contains ${input}`);
    }
    for (const imp of info.imports) {
      if (!imp.external || imp.path.startsWith("node:")) continue;
      const name = packageName(imp.path);
      if (!runtimeDependencies.has(name)) problems.push(`${out} imports ${imp.path}, which is not in package.json "dependencies"`);
    }
  }
  if (problems.length) {
    process.stderr.write(`build (${label}): ${problems.length} problem(s):\n  ${problems.join("\n  ")}\n`);
    process.exit(1);
  }
}

const started = Date.now();
const prod = await bundle(productionEntries, values.outdir);
check(prod, "production", { production: true });
if (!values["no-dev"]) {
  const dev = await bundle(devEntries, values["dev-outdir"]);
  check(dev, "dev", { production: false });
}
const names = [...Object.keys(productionEntries), ...(values["no-dev"] ? [] : Object.keys(devEntries))];
process.stdout.write(
  `build: ${names.length} entry points in ${Date.now() - started} ms → ${path.relative(root, values.outdir) || values.outdir}${values["no-dev"] ? "" : `, ${path.relative(root, values["dev-outdir"])}`}\n`,
);
