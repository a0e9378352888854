/**
 * One way every launcher (npm start, demo, bench) ends: a signal or an error nobody caught
 * stops what it started, then exits. A second signal while stopping exits at once; the reaper
 * still stops whatever is left. SIGKILL cannot be caught: the reaper covers that too.
 */
export function stopOnAnyExit(stop: () => Promise<void>, say: (message: string) => void): void {
  let stopping = false;
  const end = (reason: string, exitCode: number) => {
    if (stopping) {
      say(`${reason} while stopping: exiting now`);
      process.exit(exitCode || 1);
    }
    stopping = true;
    say(`${reason}: stopping...`);
    stop().then(
      () => {
        say("stopped.");
        process.exit(exitCode);
      },
      (err: unknown) => {
        say(`stop failed: ${(err as Error).message}`);
        process.exit(1);
      },
    );
  };
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => end(signal, 0));
  process.on("uncaughtException", (err) => end(`crashed: ${err.stack ?? err.message}`, 1));
  process.on("unhandledRejection", (reason) => end(`crashed: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`, 1));
}
