import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { Health, HealthCheckResponse_ServingStatus, HealthCheckResponseSchema } from "@pwsync/proto";
import { GrpcError, isMalformed, toGrpcService } from "./adapter.js";
import { implement } from "./implement.js";

export type ServingStatus = "SERVING" | "NOT_SERVING";

/** More than this and List refuses, as gRPC's health contract asks of servers. */
export const HEALTH_LIST_LIMIT = 100;

type Listener = (status: HealthCheckResponse_ServingStatus) => void;

/**
 * What each named service reports to grpc.health.v1 probes, and who is watching it. The
 * service name "" stands for the whole server.
 */
export class HealthStatuses {
  private readonly statuses = new Map<string, HealthCheckResponse_ServingStatus>();
  private readonly watchers = new Map<string, Set<Listener>>();

  constructor(initial: Record<string, ServingStatus> = {}) {
    for (const [service, status] of Object.entries(initial)) this.statuses.set(service, HealthCheckResponse_ServingStatus[status]);
  }

  setStatus(service: string, status: ServingStatus): void {
    const value = HealthCheckResponse_ServingStatus[status];
    this.statuses.set(service, value);
    for (const listener of this.watchers.get(service) ?? []) listener(value);
  }

  /** The status Check answers, or undefined for a service this server does not know. */
  check(service: string): HealthCheckResponse_ServingStatus | undefined {
    return this.statuses.get(service);
  }

  /** Calls `listener` with the current status (SERVICE_UNKNOWN if none) and every later one. */
  watch(service: string, listener: Listener): () => void {
    let set = this.watchers.get(service);
    if (!set) this.watchers.set(service, (set = new Set()));
    set.add(listener);
    listener(this.statuses.get(service) ?? HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.watchers.delete(service);
    };
  }

  list(): ReadonlyMap<string, HealthCheckResponse_ServingStatus> {
    return this.statuses;
  }
}

/**
 * grpc.health.v1.Health (Check, Watch, List) on the generated descriptors, as gRPC documents it:
 * Check answers NOT_FOUND for an unknown service, Watch streams SERVICE_UNKNOWN for it and
 * every change until the caller cancels. Written here instead of using grpc-health-check, which
 * parses health.proto with protobufjs at import (about 2 MB of heap in every service).
 */
export function addHealthService(server: grpc.Server, statuses: HealthStatuses): void {
  server.addService(
    toGrpcService(Health),
    implement(Health, {
      check: async (request) => {
        const status = statuses.check(request.service);
        if (status === undefined) throw new GrpcError(grpc.status.NOT_FOUND, `health status unknown for service ${request.service}`);
        return { status };
      },
      watch: (call) => {
        const request = call.request;
        if (isMalformed(request)) {
          call.emit("error", { code: grpc.status.INVALID_ARGUMENT, details: `malformed ${request.typeName}: ${request.reason}` });
          return;
        }
        const stop = statuses.watch(request.service, (status) => call.write(create(HealthCheckResponseSchema, { status })));
        call.on("cancelled", stop);
      },
      list: async () => {
        const all = statuses.list();
        if (all.size > HEALTH_LIST_LIMIT) throw new GrpcError(grpc.status.RESOURCE_EXHAUSTED, "too many services to list");
        return { statuses: Object.fromEntries([...all].map(([service, status]) => [service, { status }])) };
      },
    }),
  );
}
