import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { alertFacts } from "./facts.js";
import { DEFAULT_TEMPLATES, loadTemplates, render, TemplateError } from "@pwsync/alert-mail";

import { change, complexity, failedAt } from "./test-fixtures.js";

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
