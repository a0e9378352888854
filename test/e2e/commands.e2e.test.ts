import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { commandLineOf, descendants, isRunning, lastJsonLine, portIsFree, run, within, type Command } from "./support/processes.js";

// Every command the README and the start banner print, typed as a user would (real npm, real
// arguments, child processes), and every way a launcher can end: nothing may outlive it.

/** Bounds for "eventually", sized for a loaded 2-core machine; a hang never meets them. */
const STOPPED_WITHIN_MS = 60_000;

const started: Command[] = [];
afterEach(async () => {
  // A failed test must not leave a stack behind for the next one.
  for (const command of started.splice(0)) {
    if (!command.child.pid) continue;
    for (const pid of [command.child.pid, ...descendants(command.child.pid)]) if (isRunning(pid)) process.kill(pid, "SIGKILL");
  }
});

interface Banner {
  statusLine: string;
  demoLine: string;
  ports: number[];
}

function parseBanner(text: string): Banner {
  const statusLine = text.match(/try: (npm run pwsync -- status .*)$/m)?.[1];
  const demoLine = text.match(/Push test changes into it: (npm run demo -- .*)$/m)?.[1];
  const ports = [...text.matchAll(/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));
  if (!statusLine || !demoLine) throw new Error(`banner without its command lines:\n${text}`);
  return { statusLine, demoLine, ports: [...new Set(ports)] };
}

/** `npm start` on random ports in its own data dir, once it printed its banner. */
async function startLauncher(
  dataDir = mkdtempSync(path.join(tmpdir(), "pwsync-start-cmd-")),
): Promise<{ command: Command; launcherPid: number; banner: Banner; everything: number[] }> {
  const command = run(`npm start -- --data-dir ${dataDir} --ports random`);
  started.push(command);
  await command.waitFor(/Ctrl-C stops everything/);
  const tree = descendants(command.child.pid!);
  const launcherPid = tree.find((pid) => commandLineOf(pid).includes("scripts/start.ts") && !commandLineOf(pid).startsWith("sh "))!;
  expect(launcherPid).toBeGreaterThan(0);
  return { command, launcherPid, banner: parseBanner(command.output()), everything: tree };
}

async function expectNothingLeft(pids: number[], ports: number[]): Promise<void> {
  const gone = await within(STOPPED_WITHIN_MS, () => pids.every((pid) => !isRunning(pid)));
  const left = pids.filter(isRunning).map((pid) => `${pid} ${commandLineOf(pid)}`);
  expect(left, "processes still running").toEqual([]);
  expect(gone).toBe(true);
  for (const port of ports) expect(await portIsFree(port), `port ${port} free`).toBe(true);
}

describe("README commands", () => {
  it("npm run demo -- --changes 40 runs its own embedded stack and reports every change", async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), "pwsync-demo-cmd-"));
    const demo = run(`npm run demo -- --changes 40 --data-dir ${dataDir}`);
    started.push(demo);
    const code = await demo.exited;
    const report = lastJsonLine(demo.output());
    expect(code, demo.output().slice(-2000)).toBe(0);
    expect(report).toMatchObject({ changes: 40, lost: 0, failed: 0, signInMismatched: 0 });
    expect((report.passwordSet as number) + (report.superseded as number)).toBe(40);
    expect(report.signInVerified).toBeGreaterThan(0);
  }, 900_000);

  it("--help of start.sh, demo and bench print their usage and exit 0", async () => {
    for (const line of ["bash scripts/start.sh --help", "npm run demo -- --help", "npm run bench -- --help"]) {
      const command = run(line);
      expect(await command.exited, line).toBe(0);
      expect(command.output(), line).toMatch(/usage: /);
    }
  }, 900_000);

  it("npm run bench -- --quick --json prints its figures as the last line", async () => {
    const bench = run("npm run bench -- --quick --json");
    started.push(bench);
    const code = await bench.exited;
    const result = lastJsonLine(bench.output());
    expect(code, bench.output().slice(-2000)).toBe(0);
    expect(result.lost).toBe(0);
    expect(result.throughputPerSec).toBeGreaterThan(0);
    expect(result.overheadP50Ms).toEqual(expect.any(Number));
    expect(result.overheadLoadAverage1m).toEqual(expect.any(Number));
    expect(result.steadyOfferedPerSec).toBe(100);
    // Resident memory of every server process, in MB (a process's is never below Node's own ~30).
    const mb = expect.any(Number);
    expect(result.rssMb).toEqual({ ingest: mb, resolver: mb, "reset-executor": mb, notifier: mb, admin: mb });
    for (const figure of Object.values(result.rssMb as Record<string, number>)) expect(figure).toBeGreaterThan(30);
    expect(result.machine).toMatchObject({ cpus: expect.any(Number) });
    expect(result.history).toMatchObject({ events: expect.any(Number), p99Ms: { getStatus: expect.any(Number), watchdogTick: expect.any(Number) } });
    expect(result.agent).toMatchObject({ backlog: 5000, leftInQueue: 0, drainPerSec: expect.any(Number), rssMaxMb: expect.any(Number) });
  }, 900_000);
});

describe("npm start, the commands its banner prints, and every way it can end", () => {
  it("runs the banner's status and demo --remote lines, then Ctrl-C (SIGINT) stops everything", async () => {
    const { command, launcherPid, banner, everything } = await startLauncher();

    const status = run(banner.statusLine);
    const statusCode = await status.exited;
    expect(status.output()).toMatch(/tenant: +sandbox/);
    // 0 = healthy, 1 = the watchdog reports alerts (no agent has connected yet); anything else is a failure.
    expect([0, 1], status.output()).toContain(statusCode);

    const demo = run(banner.demoLine);
    started.push(demo);
    const demoCode = await demo.exited;
    const report = lastJsonLine(demo.output());
    expect(demoCode, demo.output().slice(-2000)).toBe(0);
    expect(report).toMatchObject({ changes: 100, lost: 0, signInMismatched: 0 });

    process.kill(launcherPid, "SIGINT");
    expect(await command.exited).toBe(0);
    await expectNothingLeft([launcherPid, ...everything], banner.ports);
  }, 900_000);

  it("a service that crashes is restarted with backoff, and the launcher says so; SIGTERM then stops everything and exits 0", async () => {
    const { command, launcherPid, banner, everything } = await startLauncher();
    // The resolver's entry point: its bundle (dist/resolver.js), or its source under PWSYNC_SERVICES_FROM=source.
    const isResolver = (pid: number) => /(\/resolver\.js|services\/resolver\/src\/main\.ts)( |$)/.test(commandLineOf(pid));
    const resolver = everything.find(isResolver)!;
    process.kill(resolver, "SIGKILL");
    await command.waitFor(/resolver#0 exited \(SIGKILL\); restarting in 1 s \(restart 1 in a row\)/);
    await command.waitFor(/resolver#0 restarted/);
    const restarted = descendants(launcherPid).find(isResolver);
    expect(restarted).toBeGreaterThan(0);
    expect(restarted).not.toBe(resolver);

    process.kill(launcherPid, "SIGTERM");
    expect(await command.exited).toBe(0);
    await expectNothingLeft([launcherPid, ...everything, restarted!], banner.ports);
  }, 900_000);

  it("SIGKILL of the launcher still ends every service and Postgres (the reaper)", async () => {
    const { launcherPid, banner, everything } = await startLauncher();
    process.kill(launcherPid, "SIGKILL");
    await expectNothingLeft([launcherPid, ...everything], banner.ports);
  }, 900_000);

  it("a launcher that dies of an uncaught error takes its services with it and exits 1", async () => {
    const crashing = run(`node --import tsx test/e2e/support/crashing-launcher.ts ${mkdtempSync(path.join(tmpdir(), "pwsync-crash-cmd-"))}`);
    started.push(crashing);
    const ready = await crashing.waitFor(/ready\. ingest 127\.0\.0\.1:(\d+) admin 127\.0\.0\.1:(\d+)/);
    const everything = descendants(crashing.child.pid!);
    expect(await crashing.exited).toBe(1);
    expect(crashing.output()).toMatch(/crashed: Error: a bug in the launcher/);
    await expectNothingLeft(everything, [Number(ready[1]), Number(ready[2])]);
  }, 900_000);
});
