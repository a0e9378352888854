import * as grpc from "@grpc/grpc-js";
import { addHealthService, HealthStatuses } from "@pwsync/grpc";

export const HEALTH_SERVICE_NAME = "pwsync.notifier";

export interface HealthServer {
  readonly port: number;
  setServing(serving: boolean): void;
  close(graceMs?: number): Promise<void>;
}

/** grpc.health.v1 for probes: "" and "pwsync.notifier" report SERVING once the processor runs. */
export async function startHealthServer(host: string, port: number): Promise<HealthServer> {
  const health = new HealthStatuses({ "": "NOT_SERVING", [HEALTH_SERVICE_NAME]: "NOT_SERVING" });
  const server = new grpc.Server();
  addHealthService(server, health);
  const boundPort = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  return {
    port: boundPort,
    setServing(serving) {
      const status = serving ? "SERVING" : "NOT_SERVING";
      health.setStatus("", status);
      health.setStatus(HEALTH_SERVICE_NAME, status);
    },
    // Graceful first; a probe's connection that lingers must not hold a stopping notifier past
    // its grace period (the other services' health servers do the same).
    close: (graceMs = 2_000) =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
