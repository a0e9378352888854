import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";

// The launcher runs the services as the container image does: the JavaScript `npm run build`
// (scripts/build.mjs, esbuild) compiles, not TypeScript compiled at run time by tsx. Memory is
// why (a tsx-loaded service carries the loader and its compile cache: ~40 MB more RSS each),
// and start-up time on a loaded machine. The build is cached under node_modules/.cache by a
// hash of everything it reads, so an edit is picked up on the next start (esbuild takes well
// under a second) and an unchanged tree starts at once. It lives inside the checkout so the
// bundles' bare imports resolve to its node_modules, as in the image.

/** Whether a file (path relative to the repository root) can change what scripts/build.mjs produces. */
export function affectsBuild(relativePath: string): boolean {
  const file = relativePath.split(path.sep).join("/");
  if (/(^|\/)node_modules\//.test(file) || /\.test\.ts$/.test(file) || /\/test-(support|fixtures)\//.test(file)) return false;
  if (["package.json", "package-lock.json", "tsconfig.json", "tsconfig.base.json", "scripts/build.mjs", "scripts/entry-points.json"].includes(file))
    return true;
  if (/^(packages|services|dev)\/[^/]+\/package\.json$/.test(file)) return true;
  return /^((packages|services|dev)\/[^/]+\/src|deploy\/container)\/.+\.(ts|mts|js|mjs|json)$/.test(file);
}

function filesUnder(root: string, dir: string): string[] {
  if (!existsSync(path.join(root, dir))) return [];
  return (readdirSync(path.join(root, dir), { recursive: true }) as string[]).map((f) => path.join(dir, f));
}

/** A hash of the path and content of every file that affects the build. */
export function buildFingerprint(root: string): string {
  const candidates = [
    ...readdirSync(root),
    ...filesUnder(root, "scripts"),
    ...filesUnder(root, "deploy/container"),
    ...["packages", "services", "dev"].flatMap((top) =>
      (existsSync(path.join(root, top)) ? readdirSync(path.join(root, top)) : []).flatMap((name) => filesUnder(root, path.join(top, name))),
    ),
  ];
  const hash = createHash("sha256");
  for (const file of [...new Set(candidates)].filter(affectsBuild).sort()) {
    const full = path.join(root, file);
    if (!statSync(full).isFile()) continue;
    hash.update(`${file}\0`).update(readFileSync(full)).update("\0");
  }
  return hash.digest("hex").slice(0, 16);
}

export interface CompiledServices {
  /** Production bundles: dist/<name>.js. */
  dist: string;
  /** The dev stand-ins: dist-dev/<name>.js. */
  devDist: string;
}

const building = new Map<string, Promise<CompiledServices>>();

/** The compiled services for the checkout at `root`, built now unless this exact tree was built before. */
export function compiledServices(root: string): Promise<CompiledServices> {
  const fingerprint = buildFingerprint(root);
  const known = building.get(fingerprint);
  if (known) return known;
  const promise = build(root, fingerprint);
  building.set(fingerprint, promise);
  promise.catch(() => building.delete(fingerprint));
  return promise;
}

async function build(root: string, fingerprint: string): Promise<CompiledServices> {
  const cache = path.join(root, "node_modules", ".cache", "pwsync-services");
  const target = path.join(cache, fingerprint);
  const result = { dist: path.join(target, "dist"), devDist: path.join(target, "dist-dev") };
  if (existsSync(target)) {
    // Marks it in use, so forgetOlderBuilds leaves it to a long-running launcher's restarts.
    const now = new Date();
    utimesSync(target, now, now);
    return result;
  }
  // Built aside and renamed into place: launchers starting side by side (parallel tests) never
  // run a half-written bundle; whichever rename comes second finds the target there and keeps it.
  const scratch = path.join(cache, `.${fingerprint}-${process.pid}-${Date.now()}`);
  mkdirSync(scratch, { recursive: true });
  try {
    await promisify(execFile)(
      process.execPath,
      [path.join(root, "scripts/build.mjs"), "--outdir", path.join(scratch, "dist"), "--dev-outdir", path.join(scratch, "dist-dev")],
      {
        cwd: root,
      },
    );
    try {
      renameSync(scratch, target);
    } catch (err) {
      if (!existsSync(target)) throw err;
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  forgetOlderBuilds(cache, fingerprint);
  return result;
}

/** Builds of other trees, untouched for a day: nothing running can still use them. */
function forgetOlderBuilds(cache: string, keep: string): void {
  const dayAgo = Date.now() - 24 * 3600_000;
  for (const name of readdirSync(cache)) {
    if (name === keep) continue;
    const dir = path.join(cache, name);
    if (statSync(dir).mtimeMs < dayAgo) rmSync(dir, { recursive: true, force: true });
  }
}
