import * as grpc from "@grpc/grpc-js";
import {
  appendToStream,
  changeStreamId,
  describeConflict,
  isChangeOutcome,
  isChangeStep,
  isFailedOutcome,
  loadSealedSecret,
  readStream,
  type EventLog,
} from "@pwsync/eventlog";
import { GrpcError } from "@pwsync/grpc";
import { newEvent } from "@pwsync/proto";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Appends RetryRequested to a failed change whose sealed password still exists. Checked and
 * appended in one transaction at the stream's current version, so a concurrent shred (the retry
 * window closing) or a second retry makes this one ABORTED instead of racing it.
 */
export async function requestRetry(
  log: EventLog,
  changeId: string,
  requestedBy: string,
  reason: string,
): Promise<{ globalPosition: bigint; streamVersion: number }> {
  if (!UUID.test(changeId)) throw new GrpcError(grpc.status.INVALID_ARGUMENT, `change_id must be a UUID, got ${JSON.stringify(changeId.slice(0, 80))}`);
  const streamId = changeStreamId(changeId);
  return log.db.transaction().execute(async (trx) => {
    const stream = await readStream(trx, streamId);
    if (stream.length === 0) throw new GrpcError(grpc.status.NOT_FOUND, `no change ${changeId}`);
    // A refused change has no pipeline step, only its outcome (ChangeRefused).
    const outcome = stream.filter((e) => isChangeStep(e.type) || isChangeOutcome(e.type)).at(-1)!;
    if (!isFailedOutcome(outcome.type))
      throw new GrpcError(
        grpc.status.FAILED_PRECONDITION,
        `change ${changeId} is not failed (its latest step is ${outcome.type}); only failed changes can be retried`,
      );
    if (!(await loadSealedSecret(trx, changeId.toLowerCase())))
      throw new GrpcError(
        grpc.status.FAILED_PRECONDITION,
        `change ${changeId} cannot be retried: its sealed password was already destroyed (the retry window after a failure has passed, or retention is off); the user must change the password again`,
      );
    const captured = stream[0]!;
    const appended = await appendToStream(
      trx,
      streamId,
      [
        {
          ...newEvent("RetryRequested", { changeId: changeId.toLowerCase(), requestedBy, reason: reason.slice(0, 500), retriedEventType: outcome.type }),
          // The retry continues the change's trace, so it shows in the same Tempo view.
          metadata: { ...(captured.metadata.traceparent ? { traceparent: captured.metadata.traceparent } : {}), actor: `admin:${requestedBy}` },
        },
      ],
      { expectedVersion: stream.length },
    );
    if (!appended.success) throw new GrpcError(grpc.status.ABORTED, `${describeConflict(appended)}; the change moved on meanwhile, look at it again`);
    return { globalPosition: appended.globalPositions[0]!, streamVersion: appended.nextVersion };
  });
}
