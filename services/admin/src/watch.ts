import { create } from "@bufbuild/protobuf";
import { changeStreamId, readAllAfter, tailStart, type EventLog } from "@pwsync/eventlog";
import { GrpcError, isMalformed, type ServerStreamingCall } from "@pwsync/grpc";
import type { Logger } from "@pwsync/log";
import { AdminService, WatchEventsResponseSchema, type WatchEventsRequestSchema } from "@pwsync/proto";
import { setTimeout as sleep } from "node:timers/promises";
import { status } from "@grpc/grpc-js";
import type { DenialRecorder } from "./audit.js";
import { requireAdmin } from "./authz.js";
import { toTimelineEvent } from "./mapping.js";

type Call = ServerStreamingCall<typeof WatchEventsRequestSchema, typeof WatchEventsResponseSchema>;

/** Server-streaming tail of the event log, in commit order, until the caller cancels. */
export function watchEventsHandler(deps: { log: EventLog; logger: Logger; denials: DenialRecorder; pollMs?: number }) {
  return (call: Call) => {
    let open = true;
    const close = () => {
      open = false;
    };
    call.on("cancelled", close);
    call.on("close", close);
    call.on("error", close);
    void (async () => {
      try {
        await requireAdmin(call, `/${AdminService.typeName}/WatchEvents`, deps.denials);
        const request = call.request;
        if (isMalformed(request)) throw new GrpcError(status.INVALID_ARGUMENT, `malformed ${request.typeName}: ${request.reason}`);
        const { afterGlobalPosition, types, changeId } = request;
        let position = await tailStart(deps.log.db, afterGlobalPosition);
        const filter = { types, ...(changeId ? { streamId: changeStreamId(changeId) } : {}) };
        while (open) {
          const batch = await readAllAfter(deps.log.db, position, 200, filter);
          for (const event of batch.events) {
            if (!open) return;
            if (!call.write(create(WatchEventsResponseSchema, { event: toTimelineEvent(event) }))) await new Promise((r) => call.once("drain", r));
          }
          if (batch.scannedTo) position = batch.scannedTo;
          else await sleep(deps.pollMs ?? 250);
        }
      } catch (err) {
        if (!open) return;
        if (err instanceof GrpcError) call.emit("error", { code: err.code, details: err.message });
        else {
          deps.logger.error({ err: (err as Error).message }, "watch failed");
          call.emit("error", { code: status.UNAVAILABLE, details: "the event log is unavailable; watch again" });
        }
      }
    })();
  };
}
