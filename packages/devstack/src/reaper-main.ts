import { createInterface } from "node:readline";
import { decideReap, type Watched } from "./reap.js";
import { isAlive, processStartTime } from "./reaper.js";

// The reaper: a small process the launcher starts in its own process group, holding the read
// end of a pipe from the launcher. The launcher registers every process it starts. When the
// pipe closes without a release — the launcher died of SIGKILL, an OOM kill, a crash the
// launcher's own handlers did not survive — the reaper stops every registered process that
// is still the one that was registered, so no service or Postgres outlives its launcher.

const graceMs = Number(process.env.PWSYNC_REAPER_GRACE_MS ?? 30_000);
const watched = new Map<number, Watched>();
let released = false;

createInterface({ input: process.stdin }).on("line", (line) => {
  try {
    const message = JSON.parse(line) as { watch?: number; signal?: NodeJS.Signals; start?: string; forget?: number; release?: boolean };
    if (message.watch) watched.set(message.watch, { pid: message.watch, signal: message.signal ?? "SIGTERM", start: message.start });
    if (message.forget) watched.delete(message.forget);
    if (message.release) released = true;
  } catch {
    // A torn last line from a killed launcher: nothing to register.
  }
});

process.stdin.on("close", async () => {
  const targets = decideReap({ released, watched: [...watched.values()], alive: isAlive, startTimeOf: processStartTime });
  for (const target of targets) {
    try {
      process.kill(target.pid, target.signal);
    } catch {
      // Gone already.
    }
  }
  const deadline = Date.now() + graceMs;
  while (targets.some((t) => isAlive(t.pid)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  for (const target of targets) {
    if (isAlive(target.pid) && (target.start === undefined || processStartTime(target.pid) === target.start)) process.kill(target.pid, "SIGKILL");
  }
  process.exit(0);
});

// The launcher's terminal may send its process group a SIGINT or SIGHUP; the reaper is in a
// group of its own, but a hang-up of a session it shares must not end it before its job.
process.on("SIGHUP", () => {});
