import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { AlertFacts } from "@pwsync/alert-mail";
import type { FailedOutcome } from "@pwsync/eventlog";
import { ResetFailureReason, ResolutionFailureReason, type ChangeCaptured, type RegisteredEvent } from "@pwsync/proto";

/** A failed outcome of a change, decoded through the event registry. */
export type TerminalFailure = RegisteredEvent<FailedOutcome>;

const RESOLUTION_REASONS: Record<ResolutionFailureReason, string> = {
  [ResolutionFailureReason.UNSPECIFIED]: "the user could not be found in Microsoft Entra ID",
  [ResolutionFailureReason.NOT_FOUND]: "no matching user exists in Microsoft Entra ID",
  [ResolutionFailureReason.AMBIGUOUS]: "more than one Microsoft Entra ID user matches this account",
  [ResolutionFailureReason.DISABLED]: "the Microsoft Entra ID user is disabled",
  [ResolutionFailureReason.DIRECTORY_SYNCED]: "the Microsoft Entra ID user is synchronised from AD (its password is managed by directory sync)",
  [ResolutionFailureReason.GRAPH_ERROR]: "Microsoft Graph returned an error while looking the user up",
  [ResolutionFailureReason.NO_IDENTIFIERS]: "the AD account has no immutable id, mail or user principal name to match on",
  [ResolutionFailureReason.OUT_OF_SCOPE]:
    "the user found is outside the domains the sending domain controller may change (possible misuse of an agent certificate)",
};

const RESET_REASONS: Record<ResetFailureReason, string> = {
  [ResetFailureReason.UNSPECIFIED]: "the password could not be set",
  [ResetFailureReason.COMPLEXITY]: "the new password does not meet the Microsoft 365 password complexity requirements",
  [ResetFailureReason.RETRIES_EXHAUSTED]: "Microsoft Graph kept failing (throttling or outages) until the retry limit was reached",
  [ResetFailureReason.FORBIDDEN]: "pwsync's Entra application is not allowed to set this user's password",
  [ResetFailureReason.USER_NOT_FOUND]: "the Microsoft Entra ID user no longer exists",
  [ResetFailureReason.DIRECTORY_SYNCED]: "the Microsoft Entra ID user is synchronised from AD (its password is managed by directory sync)",
  [ResetFailureReason.UNSEAL_FAILED]: "the encrypted password could not be decrypted (key mismatch or damaged data)",
  [ResetFailureReason.REJECTED]: "Microsoft Entra ID rejected the new password",
};

const ADVICE_ASK_IT = "please contact your IT helpdesk; until this is fixed, keep using your previous password for Microsoft 365.";

function advice(failure: TerminalFailure): string {
  if (failure.type === "ResetFailed" && (failure.payload.reason === ResetFailureReason.COMPLEXITY || failure.payload.reason === ResetFailureReason.REJECTED)) {
    return 'change your Windows password again (Ctrl+Alt+Del, then "Change a password") and choose a longer password that mixes upper- and lower-case letters, digits and symbols and does not contain your name. Until then, keep using your previous password for Microsoft 365.';
  }
  return ADVICE_ASK_IT;
}

function when(timestamp: Timestamp | undefined): string {
  return timestamp ? timestampDate(timestamp).toISOString() : "";
}

export function alertFacts(failure: TerminalFailure, change: ChangeCaptured | undefined, failedAt: Date): AlertFacts {
  const common = {
    changeId: failure.payload.changeId,
    account: change?.accountName ?? "",
    userPrincipalName: change?.userPrincipalName ?? "",
    mail: change?.mail ?? "",
    domainController: change?.domainController ?? "",
    agent: change?.agentId ?? "",
    detail: failure.payload.detail,
    changedAt: when(change?.changedAt),
    failedAt: failedAt.toISOString(),
    advice: advice(failure),
  };
  if (failure.type === "ResolutionFailed") {
    return {
      ...common,
      stage: "finding the user in Microsoft Entra ID",
      reason: RESOLUTION_REASONS[failure.payload.reason] ?? RESOLUTION_REASONS[ResolutionFailureReason.UNSPECIFIED],
      reasonCode: `RESOLUTION_FAILURE_REASON_${ResolutionFailureReason[failure.payload.reason] ?? "UNSPECIFIED"}`,
      graphResponse: "",
      attempts: "",
    };
  }
  const p = failure.payload;
  const graph = [p.httpStatus ? `HTTP ${p.httpStatus}` : "", p.graphErrorCode ? `Graph error code ${p.graphErrorCode}` : ""].filter(Boolean).join(", ");
  return {
    ...common,
    stage: "setting the new password in Microsoft Entra ID",
    reason: RESET_REASONS[p.reason] ?? RESET_REASONS[ResetFailureReason.UNSPECIFIED],
    reasonCode: `RESET_FAILURE_REASON_${ResetFailureReason[p.reason] ?? "UNSPECIFIED"}`,
    graphResponse: graph,
    attempts: p.attempts ? String(p.attempts) : "",
  };
}
