import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { GrpcError } from "@pwsync/grpc";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ChangeStateName, ChangeSummary as ChangeRow, StoredEvent } from "@pwsync/eventlog";
import { ChangeState, ChangeSummarySchema, TimelineEventSchema, type ChangeSummary, type TimelineEvent } from "@pwsync/proto";

const STATE: Record<ChangeStateName, ChangeState> = {
  captured: ChangeState.CAPTURED,
  resolved: ChangeState.RESOLVED,
  retrying: ChangeState.RETRYING,
  password_set: ChangeState.PASSWORD_SET,
  failed: ChangeState.FAILED,
  superseded: ChangeState.SUPERSEDED,
  retry_requested: ChangeState.RETRY_REQUESTED,
};

export function stateName(state: ChangeState): ChangeStateName | undefined {
  return (Object.entries(STATE) as Array<[ChangeStateName, ChangeState]>).find(([, value]) => value === state)?.[0];
}

/** The trace id (32 hex) inside a W3C traceparent, or "" when absent or malformed. */
export function traceIdOf(traceparent: unknown): string {
  if (typeof traceparent !== "string") return "";
  const match = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(traceparent);
  return match && !/^0+$/.test(match[1]!) ? match[1]! : "";
}

export function toChangeSummary(row: ChangeRow): ChangeSummary {
  return create(ChangeSummarySchema, {
    changeId: row.change_id,
    accountName: row.account_name,
    userPrincipalName: row.user_principal_name,
    domainController: row.domain_controller,
    agentId: row.agent_id,
    state: STATE[row.state] ?? ChangeState.UNSPECIFIED,
    capturedAt: timestampFromDate(row.captured_at),
    updatedAt: timestampFromDate(row.updated_at),
    lastEventType: row.last_event_type,
    detail: row.detail,
    traceId: row.trace_id,
  });
}

export function toTimelineEvent(event: StoredEvent, previous?: StoredEvent, first?: StoredEvent): TimelineEvent {
  const ms = (from?: StoredEvent) => (from ? BigInt(Math.max(0, event.createdAt.getTime() - from.createdAt.getTime())) : 0n);
  return create(TimelineEventSchema, {
    globalPosition: event.globalPosition,
    streamVersion: event.streamVersion,
    streamId: event.streamId,
    type: event.type,
    createdAt: timestampFromDate(event.createdAt),
    dataJson: JSON.stringify(event.data),
    actor: typeof event.metadata.actor === "string" ? event.metadata.actor : "",
    sincePreviousMs: ms(previous),
    sinceCaptureMs: ms(first),
    traceId: traceIdOf(event.metadata.traceparent),
  });
}

export function encodePageToken(position: bigint): string {
  return Buffer.from(`p:${position}`).toString("base64url");
}

export function decodePageToken(token: string): bigint | undefined {
  if (!token) return undefined;
  const match = /^p:(\d{1,20})$/.exec(Buffer.from(token, "base64url").toString("utf8"));
  if (!match) throw new GrpcError(grpc.status.INVALID_ARGUMENT, "page_token is not one this server issued");
  return BigInt(match[1]!);
}
