import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import * as ev from "./gen/pwsync/v1/events_pb.js";

// Event type name → payload schema. The type name stored in events.type is the message name,
// so `buf breaking` on events.proto guards the log's schema.
export const events = {
  ChangeCaptured: ev.ChangeCapturedSchema,
  ChangeRefused: ev.ChangeRefusedSchema,
  UserResolved: ev.UserResolvedSchema,
  ResolutionFailed: ev.ResolutionFailedSchema,
  RetryScheduled: ev.RetryScheduledSchema,
  PasswordSet: ev.PasswordSetSchema,
  ResetFailed: ev.ResetFailedSchema,
  Superseded: ev.SupersededSchema,
  SecretShredded: ev.SecretShreddedSchema,
  NotificationSent: ev.NotificationSentSchema,
  NotificationThrottled: ev.NotificationThrottledSchema,
  NotificationFailed: ev.NotificationFailedSchema,
  RetryRequested: ev.RetryRequestedSchema,
  AdminAccessDenied: ev.AdminAccessDeniedSchema,
  AgentAccessDenied: ev.AgentAccessDeniedSchema,
  AgentCertificateRevoked: ev.AgentCertificateRevokedSchema,
  SealingKeyCreated: ev.SealingKeyCreatedSchema,
  SealingKeyRetired: ev.SealingKeyRetiredSchema,
  SealingKeyDestroyed: ev.SealingKeyDestroyedSchema,
  WatchdogAlertRaised: ev.WatchdogAlertRaisedSchema,
  WatchdogAlertCleared: ev.WatchdogAlertClearedSchema,
} as const satisfies Record<string, DescMessage>;

export type EventTypeName = keyof typeof events;
export type EventPayload<T extends EventTypeName> = MessageShape<(typeof events)[T]>;

import { create, fromJson, toJson, type JsonValue, type MessageInitShape } from "@bufbuild/protobuf";

/** An event ready for appendToStream: the type name and its payload as proto3 JSON. */
export function newEvent<T extends EventTypeName>(type: T, init: MessageInitShape<(typeof events)[T]>): { type: T; data: JsonValue } {
  const schema = events[type] as DescMessage;
  return { type, data: toJson(schema, create(schema, init as never)) };
}

/** Parses a stored event's JSON payload back into its message. */
export function decodeEvent<T extends EventTypeName>(type: T, data: unknown): EventPayload<T> {
  return fromJson(events[type] as DescMessage, data as JsonValue, { ignoreUnknownFields: true }) as EventPayload<T>;
}

/**
 * The typed event union: one variant per registered type (or per type of T), so a consumer that
 * switches on `type` gets the matching `payload` message without a cast.
 */
export type RegisteredEvent<T extends EventTypeName = EventTypeName> = { [K in T]: { type: K; payload: EventPayload<K> } }[T];

/** A stored event's type and JSON payload as its variant of the union. */
export function decodeRegistered<T extends EventTypeName>(type: T, data: unknown): RegisteredEvent<T> {
  // The one cast: TypeScript cannot correlate a generic T with the mapped union's variants.
  return { type, payload: decodeEvent(type, data) } as RegisteredEvent<T>;
}
