import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { events, ResetFailureReason } from "@pwsync/proto";
import { alertFacts } from "./facts.js";
import { DEFAULT_TEMPLATES, loadTemplates, render, TemplateError } from "./templates.js";

const change = create(events.ChangeCaptured, {
  changeId: "7b0c6a52-55a4-4c33-9b57-0e7f2f1f7d10",
  agentId: "dc01-agent",
  domainController: "DC01.corp.example",
  accountName: "jdoe",
  userPrincipalName: "jdoe@corp.example",
  mail: "john.doe@corp.example",
  changedAt: timestampFromDate(new Date("2025-03-01T09:59:58Z")),
});
const complexity = {
  type: "ResetFailed" as const,
  payload: create(events.ResetFailed, {
    changeId: change.changeId,
    reason: ResetFailureReason.COMPLEXITY,
    detail: "Graph said: The specified password does not comply with password complexity requirements.",
    httpStatus: 400,
    graphErrorCode: "Request_BadRequest",
    attempts: 1,
  }),
};
const failedAt = new Date("2025-03-01T10:00:01Z");

describe("admin-overridable templates", () => {
  it("let an admin override a template from a folder, and reject unknown placeholders at load", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "notifier-templates-"));
    try {
      writeFileSync(path.join(dir, "admin-subject.txt"), "[pwsync] {{account}} on {{domainController}}");
      const templates = loadTemplates(dir);
      expect(render(templates, "admin", alertFacts(complexity, change, failedAt)).subject).toBe("[pwsync] jdoe on DC01.corp.example");
      expect(templates["end-user-body"]).toBe(DEFAULT_TEMPLATES["end-user-body"]);

      writeFileSync(path.join(dir, "end-user-body.txt"), "Your password was {{password}}");
      expect(() => loadTemplates(dir)).toThrow(TemplateError);
      expect(() => loadTemplates(dir)).toThrow(/unknown placeholder\(s\) \{\{password\}\}/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
