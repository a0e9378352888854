import type { DirectoryAccount, LookupResult } from "../ldap/directory.js";
import { crossCheckPasswordLastSet, type PasswordLastSetCheck } from "./captureTime.js";

/** What the scope check does with one queued change, given what the directory answered. */
export type ScopeDecision =
  | { action: "forward"; enrich: { userPrincipalName?: string; mail?: string; objectGuid?: Buffer }; passwordLastSet: PasswordLastSetCheck }
  | { action: "drop"; reason: string }
  /** The directory could not be asked: keep the change at the head of the intake and ask again later (order is kept). */
  | { action: "wait"; reason: string };

export function decideScope(capturedAt: Date, answer: { kind: "answered"; result: LookupResult } | { kind: "unreachable"; reason: string }): ScopeDecision {
  if (answer.kind === "unreachable") return { action: "wait", reason: answer.reason };
  if (answer.result.kind === "notMatched") return { action: "drop", reason: answer.result.reason };
  const account: DirectoryAccount = answer.result.account;
  return {
    action: "forward",
    enrich: {
      ...(account.userPrincipalName ? { userPrincipalName: account.userPrincipalName } : {}),
      ...(account.mail ? { mail: account.mail } : {}),
      ...(account.objectGuid ? { objectGuid: account.objectGuid } : {}),
    },
    passwordLastSet: crossCheckPasswordLastSet(capturedAt, account.passwordLastSet),
  };
}
