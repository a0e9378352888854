import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { demoUsers, pushChanges, startStack, waitForOutcomes, type RunningService, type Stack } from "@pwsync/devstack";
import { openEventLog, readStream, type EventLog } from "@pwsync/eventlog";
import { sandboxControl } from "@pwsync/sandbox-tenant";
import { eventually } from "@pwsync/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// Kubernetes and compose send SIGTERM and wait a grace period; a service must be gone by then
// whatever its dependencies are doing. Each service here is stopped while the thing it waits
// on hangs or is gone, with its stdout pipe closed (as after its launcher died).

const STOP_DEADLINE_SECONDS = 5;
/** Generous against a loaded 2-core machine; far below "never", which is what a hang gives. */
const EXIT_BOUND_MS = 30_000;

const users = demoUsers(10);
let stack: Stack;
let log: EventLog;
let control: ReturnType<typeof sandboxControl>;
let smtpThatNeverAnswers: Server;
const smtpConnections: Socket[] = [];

beforeAll(async () => {
  smtpThatNeverAnswers = createServer((socket) => smtpConnections.push(socket));
  await new Promise<void>((resolve) => smtpThatNeverAnswers.listen(0, "127.0.0.1", resolve));
  const smtpPort = (smtpThatNeverAnswers.address() as { port: number }).port;
  process.env.PWSYNC_STOP_TIMEOUT_SECONDS = String(STOP_DEADLINE_SECONDS);
  stack = await startStack({
    dataDir: mkdtempSync(path.join(tmpdir(), "pwsync-shutdown-")),
    ports: "random",
    sandbox: { users, scryptCost: 1024 },
    overlay: { notifier: { smtp: { port: smtpPort } } },
  });
  delete process.env.PWSYNC_STOP_TIMEOUT_SECONDS;
  log = await openEventLog(stack.databaseUrl, { migrate: false, maxConnections: 2 });
  control = sandboxControl(stack.sandboxUrl!, readFileSync(stack.pki.ca.cert));
}, 240_000);

afterAll(async () => {
  await log?.close().catch(() => {});
  await stack?.stop();
  for (const socket of smtpConnections) socket.destroy();
  smtpThatNeverAnswers?.close();
});

/** SIGTERM, then how the process ended, or "still running" once the bound is over. */
async function terminate(instance: string): Promise<number | string> {
  const service = stack.services.get(instance) as RunningService;
  // The reader of its stdout goes away, as when a launcher is killed: every log line now fails.
  service.child.stdout!.destroy();
  service.child.stderr!.destroy();
  service.child.kill("SIGTERM");
  return Promise.race([service.exited, new Promise<string>((r) => setTimeout(() => r("still running"), EXIT_BOUND_MS).unref())]);
}

const isExitCode = (outcome: number | string) => typeof outcome === "number";

describe("every service exits on SIGTERM within its deadline, whatever its dependencies do", () => {
  it("the notifier, while its SMTP server accepted the connection and never answers", async () => {
    // A change for a user the tenant does not have: resolution fails and the admin is alerted.
    const stranger = {
      ...users[0]!,
      id: randomUUID(),
      userPrincipalName: "nobody@contoso.example",
      mail: "nobody@contoso.example",
      onPremisesImmutableId: randomBytes(16).toString("base64"),
    };
    const [sent] = await pushChanges(stack, [
      { changeId: randomUUID(), user: stranger, password: `Aa1!${randomUUID()}`, changedAt: new Date(), agent: "dc01" },
    ]);
    await waitForOutcomes(log, new Set([sent!.changeId]), { timeoutMs: 120_000 });
    await eventually("the notifier connecting to the SMTP server", async () => smtpConnections.length > 0, 120_000);

    expect(isExitCode(await terminate("notifier#0"))).toBe(true);
  });

  it("the reset-executor, while its Graph request hangs", async () => {
    // The resolver's lookup goes through at once; every Graph call after it hangs for minutes.
    await control.faults({ reset: true, latencyMs: [0, ...Array(20).fill(600_000)] });
    const [sent] = await pushChanges(stack, [
      { changeId: randomUUID(), user: users[1]!, password: `Aa1!${randomUUID()}`, changedAt: new Date(), agent: "dc01" },
    ]);
    await eventually(
      "the executor's Graph request in flight",
      async () => {
        const events = await readStream(log.db, `change-${sent!.changeId}`);
        return events.some((e) => e.type === "UserResolved") && (await control.stats()).graphRequestsInFlight > 0;
      },
      120_000,
    );

    expect(isExitCode(await terminate("reset-executor#0"))).toBe(true);
  });

  it("the resolver, while its Graph lookup hangs", async () => {
    await control.faults({ reset: true, latencyMs: 600_000 });
    const inFlightBefore = (await control.stats()).graphRequestsInFlight;
    await pushChanges(stack, [{ changeId: randomUUID(), user: users[2]!, password: `Aa1!${randomUUID()}`, changedAt: new Date(), agent: "dc02" }]);
    await eventually("the resolver's Graph lookup in flight", async () => (await control.stats()).graphRequestsInFlight > inFlightBefore, 120_000);

    expect(isExitCode(await terminate("resolver#0"))).toBe(true);
  });

  it("ingest and the admin API, after Postgres is gone", async () => {
    process.kill(stack.postgresPid!, "SIGKILL");
    await eventually(
      "Postgres gone",
      async () => {
        try {
          process.kill(stack.postgresPid!, 0);
          return false;
        } catch {
          return true;
        }
      },
      60_000,
    );

    const [ingest, admin] = await Promise.all([terminate("ingest"), terminate("admin")]);
    expect(isExitCode(ingest)).toBe(true);
    expect(isExitCode(admin)).toBe(true);
  });
});
