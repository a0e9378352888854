import { openEventLog, readStream, type EventLog } from "@pwsync/eventlog";
import { createLogger } from "@pwsync/log";
import { createTestDatabase } from "@pwsync/testkit";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { watchdogSection } from "./config.js";
import * as seed from "./test-support/seed.js";
import { activeAlerts, startWatchdog, type Watchdog } from "./watchdog.js";

let log: EventLog;
let watchdog: Watchdog;
const notices: string[] = [];
const logger = createLogger({ service: "watchdog-test", destination: new Writable({ write: (_c, _e, cb) => cb() }) });

beforeAll(async () => {
  log = await openEventLog(await createTestDatabase("watchdog"));
  watchdog = startWatchdog({
    log,
    logger,
    settings: watchdogSection.parse({ intervalSeconds: 3600, heartbeatMissedSeconds: 60, dcSilentHours: 1000 }),
    notify: async (alert, state) => void notices.push(`${state}:${alert.kind}:${alert.subject}`),
  });
});

afterAll(async () => {
  await watchdog?.stop();
  await log?.close();
});

describe("watchdog against the event log", () => {
  it("raises once, stays quiet while the condition lasts, clears when it goes", async () => {
    await seed.agentHeartbeat(log, "dc01-agent", "dc01.corp.example", { at: new Date(Date.now() - 5 * 60_000), filterLoaded: true });
    await seed.agentHeartbeat(log, "dc02-agent", "dc02.corp.example", { filterLoaded: false });
    expect((await watchdog.check()).raised.map((a) => a.kind).sort()).toEqual(["agent_silent", "filter_not_loaded"]);
    expect((await watchdog.check()).raised).toEqual([]);
    expect((await activeAlerts(log)).map((a) => a.subject).sort()).toEqual(["dc01-agent", "dc02-agent"]);

    await seed.agentHeartbeat(log, "dc01-agent", "dc01.corp.example");
    expect((await watchdog.check()).cleared.map((a) => a.subject)).toEqual(["dc01-agent"]);
    expect((await activeAlerts(log)).map((a) => a.subject)).toEqual(["dc02-agent"]);
    expect(notices.sort()).toEqual(["cleared:agent_silent:dc01-agent", "raised:agent_silent:dc01-agent", "raised:filter_not_loaded:dc02-agent"]);
    expect((await readStream(log.db, "watchdog-agent_silent-dc01-agent")).map((e) => e.type)).toEqual(["WatchdogAlertRaised", "WatchdogAlertCleared"]);
  });

  it("a second replica checking at the same time does not raise the same alert twice", async () => {
    const other = startWatchdog({ log, logger, settings: watchdogSection.parse({ intervalSeconds: 3600, heartbeatMissedSeconds: 60 }) });
    try {
      await seed.agentHeartbeat(log, "dc03-agent", "dc03.corp.example", { oldestAge: 99_999 });
      const [a, b] = await Promise.all([watchdog.check(), other.check()]);
      expect(a.raised.length + b.raised.length).toBe(1);
      expect(await readStream(log.db, "watchdog-queue_aged-dc03-agent")).toHaveLength(1);
    } finally {
      await other.stop();
    }
  });
});
