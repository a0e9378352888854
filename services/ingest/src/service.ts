import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import type { EventLog } from "@pwsync/eventlog";
import { clientIdentity, GrpcError, isMalformed, UNAUTHENTICATED_MESSAGE } from "@pwsync/grpc";
import type { Logger } from "@pwsync/log";
import {
  AckStatus,
  HeartbeatResponseSchema,
  SealedSecretSchema,
  StreamChangesResponseSchema,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type StreamChangesRequest,
  type StreamChangesResponse,
} from "@pwsync/proto";
import { commitChanges, type ChangeToCommit } from "./commit.js";
import { recordHeartbeat } from "./heartbeat.js";
import { validateChange } from "./validate.js";

export interface IngestDeps {
  log: EventLog;
  logger: Logger;
  acceptedKeyIds: ReadonlySet<string>;
  maxBatch: number;
}

type Duplex = grpc.ServerDuplexStream<StreamChangesRequest, StreamChangesResponse>;

function refuse(call: Duplex, code: grpc.status, details: string): void {
  call.emit("error", { code, details });
}

/**
 * One agent stream. Requests are handled strictly in arrival order; everything that arrived
 * while the previous transaction was committing goes into the next one (group commit), and an
 * ack is written only after its transaction committed. The first invalid request ends the call
 * with INVALID_ARGUMENT / FAILED_PRECONDITION; the valid ones before it are committed and acked.
 */
export function streamChangesHandler(deps: IngestDeps) {
  return (call: Duplex) => {
    const identity = clientIdentity(call);
    if (!identity) {
      deps.logger.warn({ peer: call.getPeer() }, "refused agent stream: no valid client certificate");
      refuse(call, grpc.status.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE);
      return;
    }
    const agentId = identity.commonName;
    const pending: StreamChangesRequest[] = [];
    let draining = false;
    let finished = false;
    let clientDone = false;

    const finish = (error?: { code: grpc.status; details: string }) => {
      if (finished) return;
      finished = true;
      pending.length = 0;
      if (error) refuse(call, error.code, error.details);
      else call.end();
    };

    async function drain(): Promise<void> {
      if (draining) return;
      draining = true;
      try {
        while (pending.length > 0 && !finished) {
          const batch: ChangeToCommit[] = [];
          let stopWith: { code: grpc.status; details: string } | undefined;
          const receivedAt = new Date();
          while (pending.length > 0 && batch.length < deps.maxBatch) {
            const request = pending.shift()!;
            if (isMalformed(request)) {
              stopWith = { code: grpc.status.INVALID_ARGUMENT, details: `malformed ${request.typeName}: ${request.reason}` };
              break;
            }
            const verdict = validateChange(request.change, deps.acceptedKeyIds, receivedAt);
            if (!verdict.ok) {
              stopWith = { code: grpc.status[verdict.code], details: verdict.message };
              break;
            }
            batch.push({
              change: verdict.change,
              sealedEnvelope: toBinary(SealedSecretSchema, request.change!.sealedPassword!),
              agentId,
              receivedAt,
            });
          }
          if (batch.length > 0) {
            const outcomes = await commitChanges(deps.log, batch);
            for (const outcome of outcomes) {
              deps.logger.info({ changeId: outcome.changeId, agentId, status: outcome.status, globalPosition: String(outcome.globalPosition) }, "change captured");
              call.write(
                create(StreamChangesResponseSchema, {
                  changeId: outcome.changeId,
                  status: outcome.status === "committed" ? AckStatus.COMMITTED : AckStatus.DUPLICATE,
                  globalPosition: outcome.globalPosition,
                }),
              );
            }
          }
          if (stopWith) {
            deps.logger.warn({ agentId, code: grpc.status[stopWith.code], reason: stopWith.details }, "refused a change from an agent");
            finish(stopWith);
            return;
          }
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

    call.on("data", (request: StreamChangesRequest) => {
      if (finished) return;
      pending.push(request);
      void drain();
    });
    call.on("end", () => {
      clientDone = true;
      if (!draining) finish();
    });
    call.on("error", () => {
      finished = true;
    });
    call.on("cancelled", () => {
      finished = true;
    });
  };
}

export function heartbeatHandler(deps: IngestDeps) {
  return async (request: HeartbeatRequest, call: grpc.ServerUnaryCall<HeartbeatRequest, HeartbeatResponse>): Promise<HeartbeatResponse> => {
    const identity = clientIdentity(call);
    if (!identity) throw new GrpcError(grpc.status.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE);
    await recordHeartbeat(deps.log, identity.commonName, request);
    return create(HeartbeatResponseSchema, { serverTime: timestampFromDate(new Date()) });
  };
}
