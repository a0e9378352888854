export interface Watched {
  pid: number;
  /** The signal that asks this process to stop cleanly (SIGTERM for services, SIGINT for Postgres' fast shutdown). */
  signal: NodeJS.Signals;
  /** Its start time when registered; undefined where /proc is not available. */
  start: string | undefined;
}

/**
 * Which processes the reaper stops when the launcher's pipe closes: none after a clean release;
 * otherwise every registered process still running as the process that was registered (a pid
 * reused by an unrelated process since is left alone).
 */
export function decideReap(input: {
  released: boolean;
  watched: Watched[];
  alive: (pid: number) => boolean;
  startTimeOf: (pid: number) => string | undefined;
}): Watched[] {
  if (input.released) return [];
  return input.watched.filter((w) => {
    if (!input.alive(w.pid)) return false;
    const now = input.startTimeOf(w.pid);
    return w.start === undefined || now === undefined || w.start === now;
  });
}
