import { describe, expect, it } from "vitest";
import { decideReap, type Watched } from "./reap.js";
import { restartDelayMs } from "./supervise.js";

const service: Watched = { pid: 100, signal: "SIGTERM", start: "5000" };
const postgres: Watched = { pid: 200, signal: "SIGINT", start: "4000" };

describe("decideReap: what the reaper stops when the launcher's pipe closes", () => {
  it("given a clean release, stops nothing", () => {
    expect(decideReap({ released: true, watched: [service, postgres], alive: () => true, startTimeOf: (pid) => (pid === 100 ? "5000" : "4000") })).toEqual([]);
  });

  it("given the launcher died, stops every registered process still running, each with its own signal", () => {
    expect(decideReap({ released: false, watched: [service, postgres], alive: () => true, startTimeOf: (pid) => (pid === 100 ? "5000" : "4000") })).toEqual([
      service,
      postgres,
    ]);
  });

  it("given a registered process has exited, leaves its pid alone", () => {
    expect(decideReap({ released: false, watched: [service, postgres], alive: (pid) => pid === 200, startTimeOf: () => "4000" })).toEqual([postgres]);
  });

  it("given a pid now belongs to a process started later, leaves that process alone", () => {
    expect(decideReap({ released: false, watched: [service], alive: () => true, startTimeOf: () => "9999" })).toEqual([]);
  });

  it("given no start time could be read (no /proc), stops what is alive", () => {
    expect(decideReap({ released: false, watched: [{ ...service, start: undefined }], alive: () => true, startTimeOf: () => undefined })).toHaveLength(1);
  });
});

describe("restartDelayMs: the supervisor's backoff", () => {
  it("doubles from 1 s for each restart in a row and never exceeds 30 s", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 20].map(restartDelayMs)).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  });
});
