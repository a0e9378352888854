import type { AgentRow } from "@pwsync/eventlog";
import { describe, expect, it } from "vitest";
import { watchdogSection } from "./config.js";
import { evaluate } from "./watchdog-rules.js";

const now = new Date("2026-03-02T12:00:00Z");
const settings = watchdogSection.parse({ heartbeatMissedSeconds: 180, queueAgeSeconds: 900, dcSilentHours: 24, knownDomainControllers: ["dc09.corp.example"] });
const minutesAgo = (m: number) => new Date(now.getTime() - m * 60_000);
const agent = (over: Partial<AgentRow> = {}): AgentRow => ({
  agentId: "dc01-agent",
  domainController: "dc01.corp.example",
  agentVersion: "1.0.0",
  filterLoaded: true,
  queueDepth: 0,
  oldestQueuedAgeSeconds: 0,
  spoolDepth: 0,
  oldestSpooledAgeSeconds: 0,
  lastChangeSeenAt: null,
  lastHeartbeatAt: minutesAgo(1),
  serverInUse: "primary",
  lastChangeCapturedAt: null,
  ...over,
});
const recent = new Map([
  ["dc01.corp.example", minutesAgo(10)],
  ["dc09.corp.example", minutesAgo(10)],
]);
const kinds = (alerts: ReturnType<typeof evaluate>) => alerts.map((a) => `${a.kind}:${a.subject}`);

describe("watchdog rules", () => {
  it("a healthy agent on a busy DC raises nothing", () => {
    expect(evaluate([agent()], recent, settings, now, minutesAgo(60))).toEqual([]);
  });

  it("missed heartbeats: only the silence is reported, not stale readings", () => {
    const alerts = evaluate(
      [agent({ lastHeartbeatAt: minutesAgo(4), filterLoaded: false, oldestQueuedAgeSeconds: 5000 })],
      recent,
      settings,
      now,
      minutesAgo(60),
    );
    expect(kinds(alerts)).toEqual(["agent_silent:dc01-agent"]);
    expect(alerts[0]!.detail).toContain("no heartbeat for 4 min");
  });

  it("heartbeat just inside the threshold is fine", () => {
    expect(evaluate([agent({ lastHeartbeatAt: minutesAgo(2.9) })], recent, settings, now, minutesAgo(60))).toEqual([]);
  });

  it("filter not loaded and an aged queue", () => {
    expect(kinds(evaluate([agent({ filterLoaded: false, queueDepth: 3, oldestQueuedAgeSeconds: 901 })], recent, settings, now, minutesAgo(60)))).toEqual([
      "filter_not_loaded:dc01-agent",
      "queue_aged:dc01-agent",
    ]);
  });

  it("given changes left in the filter's spool past the threshold, then spool_aged; younger or none, then nothing", () => {
    const alerts = evaluate([agent({ spoolDepth: 4, oldestSpooledAgeSeconds: 601 })], recent, settings, now, minutesAgo(60));
    expect(kinds(alerts)).toEqual(["spool_aged:dc01-agent"]);
    expect(alerts[0]!.detail).toContain("4 change(s) in its spool folder");
    expect(evaluate([agent({ spoolDepth: 4, oldestSpooledAgeSeconds: 600 })], recent, settings, now, minutesAgo(60))).toEqual([]);
    expect(evaluate([agent({ spoolDepth: 0, oldestSpooledAgeSeconds: 5000 })], recent, settings, now, minutesAgo(60))).toEqual([]);
  });

  it("a known DC silent past the period, and one never heard from once watched long enough", () => {
    const quiet = new Map([["dc01.corp.example", minutesAgo(25 * 60)]]);
    expect(kinds(evaluate([agent()], quiet, settings, now, minutesAgo(60)))).toEqual(["dc_silent:dc01.corp.example"]);
    expect(kinds(evaluate([agent()], quiet, settings, now, minutesAgo(25 * 60))).sort()).toEqual([
      "dc_silent:dc01.corp.example",
      "dc_silent:dc09.corp.example",
    ]);
  });
});
