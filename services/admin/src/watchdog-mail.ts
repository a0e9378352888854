import { recordAlert } from "@pwsync/telemetry";
import type { TestAlertSender } from "./test-alert.js";
import type { WatchdogNotice } from "./watchdog.js";

/** Emails the notifier's admin recipients on each watchdog transition (one mail per transition). */
export function watchdogMailer(sender: Pick<TestAlertSender, "mailer" | "adminRecipients">): WatchdogNotice {
  return async (alert, state) => {
    if (sender.adminRecipients.length === 0) return;
    const subject = state === "raised" ? `pwsync watchdog: ${alert.kind} for ${alert.subject}` : `pwsync watchdog: resolved ${alert.kind} for ${alert.subject}`;
    const text =
      state === "raised"
        ? `${alert.detail}\n\nThis alert is sent once; you will get another message when the condition clears.\nSee it with: pwsync status\n`
        : `The condition "${alert.kind}" for ${alert.subject} has cleared.\n`;
    await sender.mailer.send(sender.adminRecipients.join(", "), { subject: subject.replace(/[\r\n]+/g, " "), text }, `watchdog-${alert.kind}`).then(
      () => recordAlert("sent", "watchdog"),
      (err: unknown) => {
        recordAlert("failed", "watchdog");
        throw err;
      },
    );
  };
}
