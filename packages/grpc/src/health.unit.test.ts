import { HealthCheckResponse_ServingStatus as Status } from "@pwsync/proto";
import { describe, expect, it } from "vitest";
import { HealthStatuses } from "./health.js";

describe("HealthStatuses", () => {
  it("given a service set NOT_SERVING at start, when it is set SERVING, then check answers SERVING", () => {
    const health = new HealthStatuses({ "": "NOT_SERVING" });
    expect(health.check("")).toBe(Status.NOT_SERVING);
    health.setStatus("", "SERVING");
    expect(health.check("")).toBe(Status.SERVING);
  });

  it("given no status for a service, then check answers nothing (the server says NOT_FOUND)", () => {
    expect(new HealthStatuses({ "": "SERVING" }).check("pwsync.other")).toBeUndefined();
  });

  it("given a watcher, then it hears the current status at once and every later change of its own service only", () => {
    const health = new HealthStatuses({ a: "NOT_SERVING" });
    const heard: Status[] = [];
    health.watch("a", (s) => heard.push(s));
    health.setStatus("b", "SERVING");
    health.setStatus("a", "SERVING");
    expect(heard).toEqual([Status.NOT_SERVING, Status.SERVING]);
  });

  it("given a watcher of an unknown service, then it hears SERVICE_UNKNOWN, then the status once one is set", () => {
    const health = new HealthStatuses();
    const heard: Status[] = [];
    health.watch("late", (s) => heard.push(s));
    health.setStatus("late", "SERVING");
    expect(heard).toEqual([Status.SERVICE_UNKNOWN, Status.SERVING]);
  });

  it("given a watcher that stopped, then it hears nothing more", () => {
    const health = new HealthStatuses({ a: "SERVING" });
    const heard: Status[] = [];
    const stop = health.watch("a", (s) => heard.push(s));
    stop();
    health.setStatus("a", "NOT_SERVING");
    expect(heard).toEqual([Status.SERVING]);
  });
});
