import { MatchedBy, ResolutionFailureReason } from "@pwsync/proto";
import type { LookupAttribute } from "./config.js";

export interface Candidate {
  id: string;
  userPrincipalName: string;
  accountEnabled: boolean;
  onPremisesSyncEnabled: boolean | null;
}

export interface Identifiers {
  immutableId: string;
  userPrincipalName: string;
  mail: string;
}

export type Lookup = { by: LookupAttribute; value: string; found: Candidate[] };

export type Resolution = { kind: "resolved"; user: Candidate; matchedBy: MatchedBy } | { kind: "failed"; reason: ResolutionFailureReason; detail: string };

const GRAPH_NAME: Record<LookupAttribute, string> = { immutableId: "onPremisesImmutableId", userPrincipalName: "userPrincipalName", mail: "mail" };
const MATCHED_BY: Record<LookupAttribute, MatchedBy> = {
  immutableId: MatchedBy.IMMUTABLE_ID,
  userPrincipalName: MatchedBy.USER_PRINCIPAL_NAME,
  mail: MatchedBy.MAIL,
};

/** The lookups to try, in configured order, skipping identifiers the change does not have. */
export function plannedLookups(order: readonly LookupAttribute[], ids: Identifiers): Array<{ by: LookupAttribute; value: string }> {
  return order.filter((by) => ids[by].length > 0).map((by) => ({ by, value: ids[by] }));
}

/**
 * Decides from the lookups done so far (in order). The first lookup that finds anyone decides:
 * one user → checks; several → ambiguous. None at all → not found, naming every lookup tried.
 */
export function decide(account: string, lookups: Lookup[], scope: readonly string[] = []): Resolution {
  if (lookups.length === 0)
    return {
      kind: "failed",
      reason: ResolutionFailureReason.NO_IDENTIFIERS,
      detail: `account ${account} has no objectGUID, userPrincipalName or mail to find it in Entra ID by`,
    };
  const decisive = lookups.find((l) => l.found.length > 0);
  if (!decisive) {
    const tried = lookups.map((l) => `${GRAPH_NAME[l.by]} '${l.value}'`).join(", ");
    return { kind: "failed", reason: ResolutionFailureReason.NOT_FOUND, detail: `no Entra ID user for account ${account}: looked up ${tried}` };
  }
  const where = `${GRAPH_NAME[decisive.by]} '${decisive.value}'`;
  if (decisive.found.length > 1) {
    const ids = decisive.found.map((u) => u.userPrincipalName).join(", ");
    return {
      kind: "failed",
      reason: ResolutionFailureReason.AMBIGUOUS,
      detail: `several Entra ID users match ${where} (${ids}); pwsync will not guess which one gets account ${account}'s password`,
    };
  }
  const user = decisive.found[0]!;
  if (user.onPremisesSyncEnabled === true)
    return {
      kind: "failed",
      reason: ResolutionFailureReason.DIRECTORY_SYNCED,
      detail: `Entra ID user ${user.userPrincipalName} (matched by ${where}) is synchronised from on-premises by Entra Connect, so Microsoft Graph refuses password writes for it; use password hash sync for this user or remove it from pwsync's LDAP filter`,
    };
  // The agent's scope, stamped by ingest: a change that names the user only by objectGUID (or
  // by an attribute another user also holds) must not reach a user of another domain. Empty
  // only for changes captured before scopes existed.
  const domain = user.userPrincipalName.slice(user.userPrincipalName.lastIndexOf("@") + 1).toLowerCase();
  if (scope.length > 0 && !scope.includes(domain))
    return {
      kind: "failed",
      reason: ResolutionFailureReason.OUT_OF_SCOPE,
      detail: `Entra ID user ${user.userPrincipalName} (matched by ${where}) is outside the sending agent's scope (${scope.join(", ")}); its password is not set`,
    };
  if (!user.accountEnabled)
    return {
      kind: "failed",
      reason: ResolutionFailureReason.DISABLED,
      detail: `Entra ID user ${user.userPrincipalName} (matched by ${where}) is disabled; its password is not synced`,
    };
  return { kind: "resolved", user, matchedBy: MATCHED_BY[decisive.by] };
}
