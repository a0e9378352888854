// Generated code lives in ./gen (buf generate, never edited); this file only re-exports it.
export * from "./gen/pwsync/v1/agent_pb.js";
export * from "./gen/pwsync/v1/admin_pb.js";
export * from "./gen/pwsync/v1/events_pb.js";
export * from "./gen/pwsync/v1/sealed_pb.js";
export * from "./gen/grpc/health/v1/health_pb.js";
export { events, newEvent, decodeEvent, decodeRegistered, type EventTypeName, type EventPayload, type RegisteredEvent } from "./event-registry.js";
