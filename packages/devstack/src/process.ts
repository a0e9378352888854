import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { createInterface } from "node:readline";
import type { Reaper } from "./reaper.js";

export interface ServiceSpec {
  name: string;
  /** Absolute path of the service's entry point: compiled JavaScript, or TypeScript (run through tsx). */
  entry: string;
  args?: string[];
  env: NodeJS.ProcessEnv;
  logFile: string;
  /** Resolves readiness from the service's JSON log lines: return a value once ready. */
  ready: (line: Record<string, unknown>) => unknown;
  /**
   * A safety net, not a schedule: readiness is awaited until the ready line or the process's
   * exit, and only a service silent for this long is given up on (and killed). Sized for a
   * loaded 2-core machine compiling TypeScript at start.
   */
  readyTimeoutMs?: number;
  /** Registers the process with the launcher's reaper the moment it exists. */
  reaper?: Reaper;
}

/** How long a service may take between SIGTERM and its exit before it is killed (its own deadline is shorter). */
export const STOP_GRACE_MS = 30_000;
const DEFAULT_READY_TIMEOUT_MS = 180_000;

export interface RunningService<T = unknown> {
  readonly name: string;
  readonly child: ChildProcess;
  readonly readyValue: T;
  /** Resolves with the exit code (or signal) when the process ends. */
  readonly exited: Promise<number | string>;
}

/**
 * V8's memory settings for every server process, the same as the container image's ENTRYPOINT
 * (a deploy test compares them). Young generation capped at 1 MB per semi-space (V8 grows it to
 * 16 MB under allocation pressure) and the old generation grown by 25 % per major GC (V8 picks
 * 10–300 % by itself): a service's memory stays bounded under load, for some more GC work
 * (measured figures in ARCHITECTURE.md, "Memory").
 */
export const SERVICE_V8_FLAGS = ["--max-semi-space-size=1", "--heap-growing-percent=25"] as const;

/**
 * node's arguments for an entry point: compiled JavaScript runs as the container image runs it
 * (without --enable-source-maps, which would parse every library's source map at import;
 * PWSYNC_NODE_ARGS=--enable-source-maps turns it on); TypeScript needs the tsx loader.
 */
export function nodeCommandLine(entry: string, extraNodeArgs: string[], args: string[]): string[] {
  const loader = /\.[cm]?ts$/.test(entry) ? ["--import", "tsx"] : [];
  return [...SERVICE_V8_FLAGS, ...extraNodeArgs, ...loader, entry, ...args];
}

/**
 * Starts one service as its own OS process (so it can be kill -9'd like in production), copies
 * its JSON log lines into its log file, and waits until a line says it is ready. A process
 * that exits first fails the start with its last lines of output.
 */
export async function spawnService<T>(spec: ServiceSpec): Promise<RunningService<T>> {
  // PWSYNC_NODE_ARGS passes flags to every service's node (e.g. --cpu-prof for profiling).
  const extraNodeArgs = (process.env.PWSYNC_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const child = spawn(process.execPath, nodeCommandLine(spec.entry, extraNodeArgs, spec.args ?? []), {
    env: spec.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  spec.reaper?.watch(child.pid, "SIGTERM");
  const logStream: WriteStream = createWriteStream(spec.logFile, { flags: "a" });
  const recent: string[] = [];
  const remember = (line: string) => {
    recent.push(line);
    if (recent.length > 20) recent.shift();
  };
  const exited = new Promise<number | string>((resolve) =>
    child.once("exit", (code, signal) => {
      spec.reaper?.forget(child.pid);
      resolve(code ?? signal ?? "unknown");
    }),
  );
  exited.then(() => logStream.end());
  const readyValue = await new Promise<T>((resolve, reject) => {
    let settled = false;
    const timeoutMs = spec.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      // Given up on, so killed: an abandoned process would keep its port and its partitions.
      const lastLines = recent.join("\n");
      void stopService({ name: spec.name, child, readyValue: undefined, exited }).then(() =>
        reject(new Error(`${spec.name} did not become ready within ${timeoutMs} ms and was stopped; last output:\n${lastLines}`)),
      );
    }, timeoutMs);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      logStream.write(`${line}\n`);
      remember(line);
      if (settled) return;
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      const value = spec.ready(parsed);
      if (value !== undefined && value !== false && value !== null) {
        settled = true;
        clearTimeout(timer);
        resolve(value as T);
      }
    });
    createInterface({ input: child.stderr! }).on("line", (line) => {
      logStream.write(`${JSON.stringify({ service: spec.name, stream: "stderr", msg: line })}\n`);
      remember(line);
    });
    exited.then((code) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`${spec.name} exited (${code}) before it was ready; last output:\n${recent.join("\n")}`));
    });
  });
  return { name: spec.name, child, readyValue, exited };
}

export async function stopService(service: RunningService, graceMs = STOP_GRACE_MS): Promise<void> {
  if (service.child.exitCode !== null || service.child.signalCode !== null) return;
  service.child.kill("SIGTERM");
  const timer = setTimeout(() => service.child.kill("SIGKILL"), graceMs);
  await service.exited;
  clearTimeout(timer);
}
