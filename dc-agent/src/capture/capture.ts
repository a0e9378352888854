import { toBinary } from "@bufbuild/protobuf";
import { buildPasswordChange } from "@pwsync/agent-link";
import type { RecipientPublicKey } from "@pwsync/crypto";
import type { Logger } from "@pwsync/log";
import { PasswordChangeSchema } from "@pwsync/proto";
import { setSafeAttributes, traceMetadata } from "@pwsync/telemetry";
import { SpanKind, SpanStatusCode, trace, type Span } from "@opentelemetry/api";
import { utf16leToUtf8, wipe } from "../frame/index.js";
import type { DurableQueue } from "../queue/durableQueue.js";
import { filetimeToTimestamp } from "./captureTime.js";
import { changeIdFor } from "./changeId.js";

/**
 * One password change as a capture source hands it over: the LSA filter's decoded frame, or
 * any other source (a Samba hook) that can say the same. The password is UTF-16LE in a Buffer
 * of its own; it is wiped before captureChange returns, whatever happens.
 */
export interface CapturedPassword {
  accountName: string;
  accountNameUtf16le: Buffer;
  password: Buffer;
  /** The source's own sequence: strictly increasing in capture order on this DC. */
  sequence: bigint;
  /** When the source saw the change, FILETIME (100 ns since 1601, UTC). */
  capturedAtFiletime: bigint;
  capturedAt: Date;
}

export type CaptureOutcome = { kind: "queued"; changeId: string; seq: number } | { kind: "dropped"; reason: string };

export interface CaptureDeps {
  domainController: string;
  recipient: RecipientPublicKey;
  /** Sealed changes waiting for the scope check (scope.ts), fsynced before this resolves. */
  intake: DurableQueue;
  logger: Logger;
  onCaptured?(at: Date): void;
}

/**
 * Seals the password at once and appends the sealed change to the durable intake queue; the
 * caller acknowledges the source only after this resolves. Nothing here waits on the
 * directory: the LDAP scope check runs later, from the queue (scope.ts), so a slow or
 * unreachable DC never makes the filter wait or spool (issue 11: "ack fast, decide later").
 * Only the sealed form is ever written; the plaintext lives only until sealing.
 */
export async function captureChange(deps: CaptureDeps, captured: CapturedPassword): Promise<CaptureOutcome> {
  // The root of the change's trace: sealing and queueing here; the scope check, ingest, the
  // resolver, each Graph attempt and the alert continue it through the change's traceparent.
  const span = trace.getTracer("pwsync").startSpan("dc-agent capture", { kind: SpanKind.PRODUCER });
  try {
    const outcome = await sealAndQueue(deps, captured, span);
    setSafeAttributes(span, { "pwsync.outcome": outcome.kind, ...(outcome.kind === "queued" ? { "pwsync.change_id": outcome.changeId } : {}) });
    return outcome;
  } catch (err) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
    throw err;
  } finally {
    span.end();
  }
}

async function sealAndQueue(deps: CaptureDeps, captured: CapturedPassword, span: Span): Promise<CaptureOutcome> {
  const changeId = changeIdFor(deps.domainController, captured);
  setSafeAttributes(span, { "pwsync.account": captured.accountName, "pwsync.domain_controller": deps.domainController });
  const log = deps.logger.child({ changeId, account: captured.accountName, filterSequence: captured.sequence.toString() });
  let utf8: Buffer | null = null;
  try {
    deps.onCaptured?.(captured.capturedAt);
    utf8 = utf16leToUtf8(captured.password);
    if (!utf8) {
      log.warn({}, "change dropped: password is not well-formed UTF-16");
      return { kind: "dropped", reason: "password is not well-formed UTF-16" };
    }
    // AD attributes (UPN, mail, objectGUID) are added by the scope check; the sealed password
    // is bound to the change id, which does not change on the way.
    const change = buildPasswordChange(
      deps.recipient,
      {
        changeId,
        accountName: captured.accountName,
        // Ordered by when the source saw the change, not by pwdLastSet read later: a change
        // that waited in the spool would share a newer change's pwdLastSet (issue 11, finding 2).
        changedAt: captured.capturedAt,
        capturedAt: filetimeToTimestamp(captured.capturedAtFiletime),
        captureSequence: captured.sequence,
        domainController: deps.domainController,
        agentSequence: captured.sequence,
        ...(span.spanContext().traceFlags & 1 ? { traceparent: traceMetadata(span).traceparent } : {}),
      },
      utf8,
    );
    const seq = await deps.intake.append(toBinary(PasswordChangeSchema, change));
    log.info({ intakeSeq: seq }, "change sealed and queued; scope check follows");
    return { kind: "queued", changeId, seq };
  } finally {
    wipe(captured.password);
    if (utf8) wipe(utf8);
  }
}
