import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The launcher's end of the reaper (see reaper-main.ts): register what you start, release on a clean stop. */
export interface Reaper {
  watch(pid: number | undefined, stopSignal: NodeJS.Signals): void;
  forget(pid: number | undefined): void;
  /** A clean stop: the launcher stopped everything itself; the reaper exits without a kill. */
  release(): void;
}

function procStat(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which may itself contain spaces and parentheses.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** The start time that tells a process from a later one reusing its pid (field 22 of /proc/<pid>/stat). */
export function processStartTime(pid: number): string | undefined {
  return procStat(pid)?.[19];
}

/** Running, and not a zombie waiting for whoever inherited it to reap it. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return procStat(pid)?.[0] !== "Z";
}

const reaperEntry = path.join(path.dirname(fileURLToPath(import.meta.url)), "reaper-main.ts");

export function startReaper(): Reaper {
  // Its own process group: a terminal's Ctrl-C or a test killing the launcher's group must not
  // take the reaper down before it has done its job.
  const child = spawn(process.execPath, ["--import", "tsx", reaperEntry], { stdio: ["pipe", "ignore", "inherit"], detached: true });
  child.unref();
  const pipe = child.stdin!;
  // Neither the pipe nor the child may keep the launcher's event loop alive.
  (pipe as unknown as { unref?: () => void }).unref?.();
  pipe.on("error", () => {});
  const send = (message: object) => {
    if (!pipe.destroyed) pipe.write(`${JSON.stringify(message)}\n`);
  };
  return {
    watch: (pid, signal) => {
      if (pid) send({ watch: pid, signal, start: processStartTime(pid) });
    },
    forget: (pid) => {
      if (pid) send({ forget: pid });
    },
    release: () => {
      send({ release: true });
      pipe.end();
    },
  };
}
