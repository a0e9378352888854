import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import type { EventLog } from "@pwsync/eventlog";
import { GrpcError, isMalformed, REFUSED_CHANGE_ID_KEY, UNAUTHENTICATED_MESSAGE, type BidiStreamingCall, type Received } from "@pwsync/grpc";
import type { Logger } from "@pwsync/log";
import {
  AckStatus,
  HeartbeatResponseSchema,
  SealedSecretSchema,
  StreamChangesResponseSchema,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type StreamChangesRequestSchema,
} from "@pwsync/proto";
import type { AgentDenialRecorder } from "./audit.js";
import { commitChanges, type ChangeToCommit, type RefusalToCommit } from "./commit.js";
import { recordHeartbeat } from "./heartbeat.js";
import { decideAgentIdentity, type AgentIdentity } from "./identity.js";
import type { AgentRateLimiter } from "./rate-limit.js";
import type { RevocationList } from "./revocations.js";
import { decideScope, type AgentScopes } from "./scope.js";
import { validateChange } from "./validate.js";

export interface IngestDeps {
  log: EventLog;
  logger: Logger;
  acceptedKeyIds: ReadonlySet<string>;
  maxBatch: number;
  scopes: AgentScopes;
  maxClockSkewMs: number;
  maxInFlightPerStream: number;
  rateLimiter: AgentRateLimiter;
  revocations: RevocationList;
  denials: AgentDenialRecorder;
  /** The current sealing public key, told to agents in heartbeat answers (key rotation). */
  currentSealingKeyPem?: () => string;
}

type Duplex = BidiStreamingCall<typeof StreamChangesRequestSchema, typeof StreamChangesResponseSchema>;
type Call = { getAuthContext(): { sslPeerCertificate?: import("node:tls").PeerCertificate } | null | undefined; getPeer(): string };

/** A change id as ingest accepts them: only such a value is echoed back in metadata. */
const CHANGE_ID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function refuse(call: Duplex, code: grpc.status, details: string, changeId?: string): void {
  const metadata = new grpc.Metadata();
  if (changeId && CHANGE_ID_SHAPE.test(changeId)) metadata.set(REFUSED_CHANGE_ID_KEY, changeId);
  call.emit("error", { code, details, metadata });
}

const REVOKED_MESSAGE = "this agent certificate has been revoked; issue the agent a new one";

/**
 * Who is calling, or why not: UNAUTHENTICATED without a certificate the agent CA vouches for
 * (the TLS layer decided), PERMISSION_DENIED for a verified certificate that is not an agent's
 * or is revoked. Every refusal is recorded in the ingest-audit stream (rate-limited).
 */
async function authenticateAgent(
  deps: IngestDeps,
  call: Call,
  method: string,
): Promise<{ ok: true; agent: AgentIdentity } | { ok: false; code: grpc.status; details: string }> {
  const peer = call.getAuthContext()?.sslPeerCertificate;
  if (!peer?.raw) {
    await deps.denials.record({
      method,
      code: "UNAUTHENTICATED",
      subject: "",
      peer: call.getPeer(),
      detail: "no valid client certificate",
      certificateFingerprint: "",
    });
    return { ok: false, code: grpc.status.UNAUTHENTICATED, details: UNAUTHENTICATED_MESSAGE };
  }
  const verdict = decideAgentIdentity(peer);
  if (!verdict.ok) {
    await deps.denials.record({
      method,
      code: "PERMISSION_DENIED",
      subject: verdict.subject,
      peer: call.getPeer(),
      detail: verdict.detail,
      certificateFingerprint: verdict.fingerprint256,
    });
    return { ok: false, code: grpc.status.PERMISSION_DENIED, details: `not an agent certificate: ${verdict.detail}` };
  }
  if (deps.revocations.isRevoked(verdict.agent.fingerprint256)) {
    await deps.denials.record({
      method,
      code: "PERMISSION_DENIED",
      subject: verdict.agent.commonName,
      peer: call.getPeer(),
      detail: "certificate revoked",
      certificateFingerprint: verdict.agent.fingerprint256,
    });
    return { ok: false, code: grpc.status.PERMISSION_DENIED, details: REVOKED_MESSAGE };
  }
  return verdict;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One agent stream. Requests are handled strictly in arrival order; everything that arrived
 * while the previous transaction was committing goes into the next one (group commit), and an
 * ack is written only after its transaction committed. The first invalid request ends the call
 * with INVALID_ARGUMENT / FAILED_PRECONDITION; the valid ones before it are committed and acked.
 * A change outside the agent's scope is recorded as ChangeRefused (no secret kept) and acked as
 * refused. At most `maxInFlightPerStream` requests are held: beyond that the stream is paused,
 * so HTTP/2 flow control pushes back on the agent instead of ingest buffering its backlog.
 */
export function streamChangesHandler(deps: IngestDeps) {
  return (call: Duplex) => {
    const pending: Received<typeof StreamChangesRequestSchema>[] = [];
    let draining = false;
    let finished = false;
    let clientDone = false;
    let agent: AgentIdentity | undefined;
    let unsubscribe: () => void = () => {};

    const finish = (error?: { code: grpc.status; details: string; changeId?: string }) => {
      if (finished) return;
      finished = true;
      unsubscribe();
      pending.length = 0;
      if (error) refuse(call, error.code, error.details, error.changeId);
      else call.end();
    };

    // Until the certificate is checked, hold what arrives (bounded like any other time).
    call.pause();
    void authenticateAgent(deps, call, "/pwsync.v1.AgentIngestService/StreamChanges").then((auth) => {
      if (!auth.ok) {
        finish({ code: auth.code, details: auth.details });
        return;
      }
      agent = auth.agent;
      const fingerprint = agent.fingerprint256.toUpperCase();
      unsubscribe = deps.revocations.onRevoked((revoked) => {
        if (revoked !== fingerprint) return;
        deps.logger.warn({ agentId: agent!.agentId, certificateFingerprint: fingerprint }, "ending an open stream of a revoked agent certificate");
        finish({ code: grpc.status.PERMISSION_DENIED, details: REVOKED_MESSAGE });
      });
      call.resume();
      void drain();
    });

    async function drain(): Promise<void> {
      if (draining || !agent) return;
      draining = true;
      const agentId = agent.agentId;
      try {
        while (pending.length > 0 && !finished) {
          const batch: ChangeToCommit[] = [];
          const refusals: RefusalToCommit[] = [];
          let stopWith: { code: grpc.status; details: string; changeId?: string } | undefined;
          let waitMs = 0;
          const receivedAt = new Date();
          while (pending.length > 0 && batch.length + refusals.length < deps.maxBatch) {
            const request = pending[0]!;
            if (isMalformed(request)) {
              stopWith = { code: grpc.status.INVALID_ARGUMENT, details: `malformed ${request.typeName}: ${request.reason}` };
              break;
            }
            const verdict = validateChange(request.change, deps.acceptedKeyIds, receivedAt, deps.maxClockSkewMs);
            if (!verdict.ok) {
              stopWith = { code: grpc.status[verdict.code], details: verdict.message, changeId: request.change?.changeId };
              break;
            }
            waitMs = deps.rateLimiter.take(agentId, Date.now());
            if (waitMs > 0) break;
            pending.shift();
            const scope = decideScope(deps.scopes, agentId, verdict.change);
            if (!scope.ok) {
              refusals.push({ change: verdict.change, agent: agent!, reason: scope.reason, detail: scope.detail });
              continue;
            }
            batch.push({
              change: verdict.change,
              sealedEnvelope: toBinary(SealedSecretSchema, request.change!.sealedPassword!),
              agent: agent!,
              scope: scope.domains,
              receivedAt,
            });
          }
          if (batch.length > 0 || refusals.length > 0) {
            const outcomes = await commitChanges(deps.log, batch, refusals);
            for (const outcome of outcomes) {
              const log = outcome.status === "refused" ? deps.logger.error.bind(deps.logger) : deps.logger.info.bind(deps.logger);
              log(
                { changeId: outcome.changeId, agentId, status: outcome.status, globalPosition: String(outcome.globalPosition) },
                outcome.status === "refused" ? "ALERT: refused a change outside the agent's scope" : "change captured",
              );
              call.write(
                create(StreamChangesResponseSchema, {
                  changeId: outcome.changeId,
                  status: outcome.status === "committed" ? AckStatus.COMMITTED : outcome.status === "duplicate" ? AckStatus.DUPLICATE : AckStatus.REFUSED,
                  globalPosition: outcome.globalPosition,
                }),
              );
            }
          }
          if (pending.length < deps.maxInFlightPerStream && !finished) call.resume();
          if (stopWith) {
            deps.logger.warn({ agentId, code: grpc.status[stopWith.code], reason: stopWith.details }, "refused a change from an agent");
            finish(stopWith);
            return;
          }
          if (waitMs > 0) await sleep(waitMs);
        }
        if (clientDone) finish();
      } catch (err) {
        // Nothing unacked was committed... or it was, and the agent's re-send is a duplicate.
        deps.logger.error({ err: (err as Error).message, agentId }, "committing changes failed");
        finish({ code: grpc.status.UNAVAILABLE, details: "the event log is unavailable; retry later" });
      } finally {
        draining = false;
      }
    }

    call.on("data", (request: Received<typeof StreamChangesRequestSchema>) => {
      if (finished) return;
      pending.push(request);
      if (pending.length >= deps.maxInFlightPerStream) call.pause();
      void drain();
    });
    call.on("end", () => {
      clientDone = true;
      if (!draining && agent) finish();
    });
    call.on("error", () => {
      finished = true;
      unsubscribe();
    });
    call.on("cancelled", () => {
      finished = true;
      unsubscribe();
    });
  };
}

export function heartbeatHandler(deps: IngestDeps) {
  return async (request: HeartbeatRequest, call: grpc.ServerUnaryCall<HeartbeatRequest, HeartbeatResponse>): Promise<HeartbeatResponse> => {
    const auth = await authenticateAgent(deps, call, "/pwsync.v1.AgentIngestService/Heartbeat");
    if (!auth.ok) throw new GrpcError(auth.code, auth.details);
    await recordHeartbeat(deps.log, auth.agent.agentId, auth.agent.agentId, request);
    return create(HeartbeatResponseSchema, { serverTime: timestampFromDate(new Date()), sealingPublicKeyPem: deps.currentSealingKeyPem?.() ?? "" });
  };
}
