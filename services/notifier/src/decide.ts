// Who gets an alert about one terminal failure, and who is held back by the throttle.
// Pure: no clock, no database; the processor supplies both.

import type { AlertRole } from "@pwsync/alert-mail";
import { singleMailbox } from "./address.js";

export type Role = AlertRole;

export interface NotifyPolicy {
  notifyAdmins: boolean;
  notifyEndUser: boolean;
  adminRecipients: readonly string[];
  endUserAddressFrom: readonly ("mail" | "userPrincipalName")[];
  throttle: { maxPerWindow: number; windowMinutes: number };
}

export interface EndUserIdentity {
  mail: string;
  userPrincipalName: string;
}

/** A recipient's throttle window as stored (notifier_throttle). */
export interface ThrottleWindow {
  windowStartedAt: Date;
  sentInWindow: number;
}

export interface Situation {
  /** The terminal event being notified about (ResolutionFailed / ResetFailed). */
  aboutEventType: string;
  /** Absent when the change's ChangeCaptured cannot be found. */
  endUser: EndUserIdentity | undefined;
  /** Outcomes already in the stream, as outcomeKey(...) values: a redelivery must not resend. */
  alreadyRecorded: ReadonlySet<string>;
  /** Throttle windows by (lower-case) recipient. */
  throttle: ReadonlyMap<string, ThrottleWindow>;
  now: Date;
}

export type Decision =
  | { kind: "send"; role: Role; recipient: string }
  | { kind: "throttle"; role: Role; recipient: string; throttledUntil: Date }
  | { kind: "noAddress"; role: Role; reason: string };

export function outcomeKey(aboutEventType: string, role: Role, recipient: string): string {
  return `${aboutEventType}|${role}|${recipient.toLowerCase()}`;
}

/** Whether the stored window has ended by `now` (then the recipient starts a fresh one). */
export function windowExpired(window: ThrottleWindow, now: Date, windowMinutes: number): boolean {
  return window.windowStartedAt.getTime() + windowMinutes * 60_000 <= now.getTime();
}

export function decide(policy: NotifyPolicy, situation: Situation): Decision[] {
  const candidates: { role: Role; recipient: string }[] = [];
  const decisions: Decision[] = [];
  if (policy.notifyAdmins) {
    for (const recipient of new Set(policy.adminRecipients.map((r) => r.toLowerCase()))) candidates.push({ role: "admin", recipient });
  }
  if (policy.notifyEndUser) {
    const recipient = endUserAddress(policy, situation.endUser);
    if (recipient) candidates.push({ role: "endUser", recipient });
    else if (!situation.alreadyRecorded.has(outcomeKey(situation.aboutEventType, "endUser", ""))) {
      decisions.push({
        kind: "noAddress",
        role: "endUser",
        reason: situation.endUser
          ? `the account has no ${policy.endUserAddressFrom.join(" or ")} to send to`
          : "the change's ChangeCaptured event was not found, so the user's address is unknown",
      });
    }
  }

  // Counted as we go, so one failure that mails the same address twice (admin and end user)
  // respects the limit too.
  const windows = new Map(situation.throttle);
  for (const { role, recipient } of candidates) {
    if (situation.alreadyRecorded.has(outcomeKey(situation.aboutEventType, role, recipient))) continue;
    const { maxPerWindow, windowMinutes } = policy.throttle;
    const stored = windows.get(recipient);
    const window = !stored || windowExpired(stored, situation.now, windowMinutes) ? { windowStartedAt: situation.now, sentInWindow: 0 } : stored;
    if (window.sentInWindow >= maxPerWindow) {
      decisions.push({ kind: "throttle", role, recipient, throttledUntil: new Date(window.windowStartedAt.getTime() + windowMinutes * 60_000) });
    } else {
      decisions.push({ kind: "send", role, recipient });
      windows.set(recipient, { windowStartedAt: window.windowStartedAt, sentInWindow: window.sentInWindow + 1 });
    }
  }
  return decisions;
}

function endUserAddress(policy: NotifyPolicy, endUser: EndUserIdentity | undefined): string | undefined {
  if (!endUser) return undefined;
  for (const field of policy.endUserAddressFrom) {
    // Exactly one mailbox or nothing: the value comes from AD, and a list would add recipients.
    const address = singleMailbox(endUser[field]);
    if (address) return address;
  }
  return undefined;
}
