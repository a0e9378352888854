import { randomUUID } from "node:crypto";
import { alertMailSettingsSchema, createMailer, loadTemplates, render, type Mailer } from "@pwsync/alert-mail";

export interface TestAlertSender {
  send(recipients: string[], requestedBy: string): Promise<{ recipients: string[]; messageId: string }>;
  readonly adminRecipients: readonly string[];
  readonly mailer: Mailer;
  close(): void;
}

/**
 * The seed's test button for alerts: the notifier's own relay settings (pwsync.yaml's
 * `notifier:` section), mailer and admin template, filled with facts that say plainly it is a
 * test, so the admin sees exactly what a real alert will look like and that the relay accepts it.
 */
export function testAlertSender(notifierSection: Record<string, unknown>): TestAlertSender {
  const config = alertMailSettingsSchema.parse(notifierSection);
  const mailer = createMailer(config.smtp);
  const templates = loadTemplates(config.templatesDir);
  return {
    adminRecipients: config.adminRecipients,
    mailer,
    async send(recipients, requestedBy) {
      const to = recipients.length > 0 ? recipients : config.adminRecipients;
      if (to.length === 0) throw new Error("no recipients: give some, or configure notifier.adminRecipients");
      const now = new Date().toISOString();
      const changeId = randomUUID();
      const mail = render(templates, "admin", {
        changeId,
        account: "TEST-ALERT",
        userPrincipalName: "test-alert@example.invalid",
        mail: "test-alert@example.invalid",
        domainController: "(none: test alert)",
        agent: "(none)",
        stage: "sending a test alert requested from the admin API",
        reason: `test alert requested by ${requestedBy}`,
        reasonCode: "TEST",
        detail: "This is a test. No password change failed.",
        graphResponse: "",
        attempts: "0",
        changedAt: now,
        failedAt: now,
        advice: "Nothing to do: this message only proves that alerts reach you.",
      });
      const { messageId } = await mailer.send(to.join(", "), { ...mail, subject: `[TEST] ${mail.subject}` }, changeId);
      return { recipients: [...to], messageId };
    },
    close: () => mailer.close(),
  };
}
