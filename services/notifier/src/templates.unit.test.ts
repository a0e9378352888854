import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { events, ResolutionFailureReason } from "@pwsync/proto";
import { alertFacts } from "./facts.js";
import { DEFAULT_TEMPLATES, render } from "@pwsync/alert-mail";

import { change, complexity, failedAt } from "./test-fixtures.js";

describe("alert templates", () => {
  it("tell an admin the account, DC, reason, detail, change id and times", () => {
    const mail = render(DEFAULT_TEMPLATES, "admin", alertFacts(complexity, change, failedAt));
    expect(mail.subject).toBe("Password sync failed for jdoe: the new password does not meet the Microsoft 365 password complexity requirements");
    for (const fact of [
      "jdoe",
      "DC01.corp.example",
      "dc01-agent",
      "RESET_FAILURE_REASON_COMPLEXITY",
      "does not comply with password complexity",
      "HTTP 400, Graph error code Request_BadRequest",
      change.changeId,
      "2025-03-01T09:59:58.000Z",
      "2025-03-01T10:00:01.000Z",
    ]) {
      expect(mail.text).toContain(fact);
    }
    expect(mail.text).not.toContain("{{");
  });

  it("tell the end user what happened and to choose a stronger password after a complexity failure", () => {
    const mail = render(DEFAULT_TEMPLATES, "endUser", alertFacts(complexity, change, failedAt));
    expect(mail.subject).toBe("Your new password could not be synchronised to Microsoft 365");
    expect(mail.text).toContain("jdoe");
    expect(mail.text).toContain("complexity requirements");
    expect(mail.text).toContain("change your Windows password again");
    expect(mail.text).toContain(change.changeId);
  });

  it("send the end user to the helpdesk when changing the password again would not help", () => {
    const notFound = {
      type: "ResolutionFailed" as const,
      payload: create(events.ResolutionFailed, {
        changeId: change.changeId,
        reason: ResolutionFailureReason.NOT_FOUND,
        detail: "no user with mail john.doe@corp.example",
      }),
    };
    const mail = render(DEFAULT_TEMPLATES, "endUser", alertFacts(notFound, change, failedAt));
    expect(mail.text).toContain("contact your IT helpdesk");
    expect(mail.text).not.toContain("change your Windows password again");
  });

  it("mark a missing fact as unknown instead of leaving a blank", () => {
    const mail = render(DEFAULT_TEMPLATES, "admin", alertFacts(complexity, undefined, failedAt));
    expect(mail.subject).toBe("Password sync failed for (unknown): the new password does not meet the Microsoft 365 password complexity requirements");
  });

  it("keep a line break in an account name out of the subject header", () => {
    const tricky = create(events.ChangeCaptured, { ...change, accountName: "jdoe\r\nBcc: everyone@corp.example" });
    expect(render(DEFAULT_TEMPLATES, "admin", alertFacts(complexity, tricky, failedAt)).subject).not.toMatch(/[\r\n]/);
  });
});
