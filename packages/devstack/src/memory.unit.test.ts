import { describe, expect, it } from "vitest";
import { largestPerService, residentMb, residentMbFromStatus } from "./memory.js";

describe("residentMbFromStatus", () => {
  it("reads VmRSS (kB) as whole MB, not VmHWM or VmSize", () => {
    const status = ["Name:\tnode", "VmPeak:\t 1200000 kB", "VmSize:\t 1100000 kB", "VmHWM:\t  150000 kB", "VmRSS:\t   92160 kB", "Threads:\t11"].join("\n");
    expect(residentMbFromStatus(status)).toBe(90);
  });

  it("is undefined for a kernel thread or a zombie, which have no VmRSS line", () => {
    expect(residentMbFromStatus("Name:\tkworker/0:1\nState:\tI (idle)\n")).toBeUndefined();
  });
});

describe("residentMb", () => {
  it("measures this very process, and nothing for a pid that does not exist", () => {
    expect(residentMb(process.pid)).toBeGreaterThan(10);
    expect(residentMb(2 ** 22 + 1)).toBeUndefined();
    expect(residentMb(undefined)).toBeUndefined();
  });
});

describe("largestPerService", () => {
  it("keeps each service's largest replica and skips instances that could not be measured", () => {
    expect(largestPerService({ ingest: 80, "resolver#0": 70, "resolver#1": 95, "notifier#0": undefined, "notifier#1": 60 })).toEqual({
      ingest: 80,
      resolver: 95,
      notifier: 60,
    });
  });
});
