import { toBinary } from "@bufbuild/protobuf";
import { buildPasswordChange } from "@pwsync/agent-link";
import type { RecipientPublicKey } from "@pwsync/crypto";
import type { Logger } from "@pwsync/log";
import { PasswordChangeSchema } from "@pwsync/proto";
import { setSafeAttributes, traceMetadata } from "@pwsync/telemetry";
import { SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { utf16leToUtf8, wipe, type DecodedFrame } from "../frame/index.js";
import { DirectoryError, type Directory } from "../ldap/directory.js";
import type { DurableQueue } from "../queue/durableQueue.js";
import { crossCheckPasswordLastSet, filetimeToTimestamp } from "./captureTime.js";
import { changeIdFor } from "./changeId.js";

export type CaptureOutcome =
  | { kind: "queued"; changeId: string; seq: number }
  | { kind: "dropped"; reason: string }
  /** The directory could not be asked; the filter should keep (spool) the frame and resend. */
  | { kind: "retryLater"; reason: string };

export interface CaptureDeps {
  domainController: string;
  directory: Pick<Directory, "lookup">;
  recipient: RecipientPublicKey;
  queue: DurableQueue;
  logger: Logger;
  onCaptured?(at: Date): void;
}

/**
 * One frame from the filter: look the account up, seal the password at once, append the
 * sealed change to the durable queue. Only the sealed form is ever written anywhere; the
 * plaintext buffers are wiped before this returns, whatever happens.
 */
export async function captureFrame(deps: CaptureDeps, frame: DecodedFrame): Promise<CaptureOutcome> {
  // The root of the change's trace: lookup, sealing and queueing here; ingest, the resolver,
  // each Graph attempt and the alert continue it through the traceparent in the change.
  const span = trace.getTracer("pwsync").startSpan("dc-agent capture", { kind: SpanKind.PRODUCER });
  try {
    const outcome = await captureFrameTraced(deps, frame, span);
    setSafeAttributes(span, { "pwsync.outcome": outcome.kind, ...(outcome.kind === "queued" ? { "pwsync.change_id": outcome.changeId } : {}) });
    return outcome;
  } catch (err) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
    throw err;
  } finally {
    span.end();
  }
}

async function captureFrameTraced(deps: CaptureDeps, frame: DecodedFrame, span: ReturnType<ReturnType<typeof trace.getTracer>["startSpan"]>): Promise<CaptureOutcome> {
  const changeId = changeIdFor(deps.domainController, frame);
  setSafeAttributes(span, { "pwsync.account": frame.accountName, "pwsync.domain_controller": deps.domainController });
  const log = deps.logger.child({ changeId, account: frame.accountName, filterSequence: frame.sequence.toString() });
  let utf8: Buffer | null = null;
  try {
    deps.onCaptured?.(frame.capturedAt);
    log.info({}, "processing password change");
    let lookup;
    try {
      lookup = await deps.directory.lookup(frame.accountName);
    } catch (err) {
      const reason = err instanceof DirectoryError ? err.message : `LDAP lookup failed: ${(err as Error).message}`;
      log.error({ err: reason }, "cannot look the account up; asking the filter to keep the frame");
      return { kind: "retryLater", reason };
    }
    if (lookup.kind === "notMatched") {
      log.info({ reason: lookup.reason }, "change dropped: account outside the sync scope");
      return { kind: "dropped", reason: lookup.reason };
    }
    const account = lookup.account;
    const check = crossCheckPasswordLastSet(frame.capturedAt, account.passwordLastSet);
    if (check.kind === "captureAfterPasswordLastSet")
      log.warn({ byMs: check.byMs }, "AD's pwdLastSet is older than the filter's capture time: check this DC's clock; the change is ordered by capture time");
    else if (check.kind === "newerChangeSince") log.info({ byMs: check.byMs }, "the account's password changed again since this capture; ordering by capture time keeps the newer one");
    utf8 = utf16leToUtf8(frame.password);
    if (!utf8) return { kind: "dropped", reason: "password is not well-formed UTF-16" };
    const change = buildPasswordChange(
      deps.recipient,
      {
        changeId,
        accountName: frame.accountName,
        ...(account.userPrincipalName ? { userPrincipalName: account.userPrincipalName } : {}),
        ...(account.mail ? { mail: account.mail } : {}),
        ...(account.objectGuid ? { objectGuid: account.objectGuid } : {}),
        // Ordered by when the filter saw the change, not by pwdLastSet read now: a change that
        // waited in the spool would share a newer change's pwdLastSet (issue 11, finding 2).
        changedAt: frame.capturedAt,
        capturedAt: filetimeToTimestamp(frame.capturedAtFiletime),
        captureSequence: frame.sequence,
        domainController: deps.domainController,
        agentSequence: frame.sequence,
        ...(span.spanContext().traceFlags & 1 ? { traceparent: traceMetadata(span).traceparent } : {}),
      },
      utf8,
    );
    const seq = await deps.queue.append(toBinary(PasswordChangeSchema, change));
    log.info({ seq, mail: account.mail, upn: account.userPrincipalName, disabled: account.disabled }, "change sealed and queued");
    return { kind: "queued", changeId, seq };
  } finally {
    wipe(frame.password);
    if (utf8) wipe(utf8);
  }
}
