import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { PasswordChange } from "@pwsync/proto";

export interface ValidChange {
  changeId: string;
  accountName: string;
  userPrincipalName: string;
  mail: string;
  immutableId: string;
  changedAt: Date;
  domainController: string;
  agentSequence: bigint;
  /** Kept as the proto Timestamp: its nanoseconds order two changes within one millisecond. */
  capturedAt: Timestamp | undefined;
  captureSequence: bigint;
  traceparent: string;
  keyId: string;
}

export type Validation = { ok: true; change: ValidChange } | { ok: false; code: "INVALID_ARGUMENT" | "FAILED_PRECONDITION"; message: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
// C0/C1 controls and NUL never belong in a name; they would also corrupt logs and emails.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** Default for ingest.maxClockSkewSeconds. */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 2 * 60_000;

function text(name: string, value: string, max: number, required: boolean): string | undefined {
  if (required && value.length === 0) return `${name} is required`;
  if (value.length > max) return `${name} is ${value.length} characters; at most ${max} are allowed`;
  if (CONTROL.test(value)) return `${name} contains control characters`;
  return undefined;
}

/** Checks one change from an agent; the message names the change and the field at fault. */
export function validateChange(
  change: PasswordChange | undefined,
  acceptedKeyIds: ReadonlySet<string>,
  now: Date,
  maxClockSkewMs = DEFAULT_MAX_CLOCK_SKEW_MS,
): Validation {
  if (!change) return { ok: false, code: "INVALID_ARGUMENT", message: "request has no change" };
  const id = change.changeId;
  const fail = (message: string, code: "INVALID_ARGUMENT" | "FAILED_PRECONDITION" = "INVALID_ARGUMENT"): Validation => ({
    ok: false,
    code,
    message: `change ${id || "(no id)"}: ${message}`,
  });
  if (!UUID.test(id)) return fail("change_id must be a lowercase UUID");
  const textProblem =
    text("account_name", change.accountName, 256, true) ??
    text("user_principal_name", change.userPrincipalName, 256, false) ??
    text("mail", change.mail, 256, false) ??
    text("domain_controller", change.domainController, 255, false);
  if (textProblem) return fail(textProblem);
  if (change.objectGuid.length !== 0 && change.objectGuid.length !== 16) return fail(`object_guid must be 16 bytes, got ${change.objectGuid.length}`);
  if (change.objectGuid.length === 0 && !change.userPrincipalName && !change.mail)
    return fail("no identifier to find the user in Entra: object_guid, user_principal_name and mail are all empty");
  if (!change.changedAt) return fail("changed_at is required");
  const changedAt = timestampDate(change.changedAt);
  if (Number.isNaN(changedAt.getTime())) return fail("changed_at is not a valid time");
  // A change dated ahead would beat every real change made until then (newest wins per user),
  // so a forged or clock-broken one must not get in.
  if (changedAt.getTime() > now.getTime() + maxClockSkewMs)
    return fail(
      `changed_at ${changedAt.toISOString()} is more than ${Math.round(maxClockSkewMs / 1000)} s ahead of ingest's clock (${now.toISOString()}); check the DC's clock`,
    );
  if (change.capturedAt) {
    const capturedAt = timestampDate(change.capturedAt);
    if (Number.isNaN(capturedAt.getTime()) || change.capturedAt.nanos < 0 || change.capturedAt.nanos > 999_999_999)
      return fail("captured_at is not a valid time");
    // The capture time orders changes too (newest capture wins): the same bound applies.
    if (capturedAt.getTime() > now.getTime() + maxClockSkewMs)
      return fail(
        `captured_at ${capturedAt.toISOString()} is more than ${Math.round(maxClockSkewMs / 1000)} s ahead of ingest's clock (${now.toISOString()}); check the DC's clock`,
      );
  }
  if (change.traceparent && !TRACEPARENT.test(change.traceparent)) return fail("traceparent is not a W3C traceparent");
  const sealed = change.sealedPassword;
  if (!sealed) return fail("sealed_password is required");
  if (sealed.version !== 1) return fail(`sealed_password.version ${sealed.version} is not supported (expected 1)`);
  if (sealed.ephemeralPublicKey.length !== 32) return fail("sealed_password.ephemeral_public_key must be 32 bytes");
  if (sealed.nonce.length !== 12) return fail("sealed_password.nonce must be 12 bytes");
  if (sealed.tag.length !== 16) return fail("sealed_password.tag must be 16 bytes");
  // Windows passwords are at most 256 UTF-16 units, so 1 KiB of UTF-8 is a generous bound.
  if (sealed.ciphertext.length === 0 || sealed.ciphertext.length > 1024) return fail("sealed_password.ciphertext must be 1 to 1024 bytes");
  if (!acceptedKeyIds.has(sealed.keyId))
    return fail(
      `sealed to key id ${JSON.stringify(sealed.keyId)}, which the reset-executor does not hold; update the agent's sealing public key`,
      "FAILED_PRECONDITION",
    );
  return {
    ok: true,
    change: {
      changeId: id,
      accountName: change.accountName,
      userPrincipalName: change.userPrincipalName,
      mail: change.mail,
      immutableId: change.objectGuid.length ? Buffer.from(change.objectGuid).toString("base64") : "",
      changedAt,
      domainController: change.domainController,
      agentSequence: change.agentSequence,
      capturedAt: change.capturedAt,
      captureSequence: change.captureSequence,
      traceparent: change.traceparent,
      keyId: sealed.keyId,
    },
  };
}
