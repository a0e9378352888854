import { implement, mtlsServerCredentials, startGrpcServer, toGrpcService, type RunningGrpcServer } from "@pwsync/grpc";
import { AdminService, file_pwsync_v1_admin } from "@pwsync/proto";
import type { AdminConfig } from "./config.js";
import { requireAdmin } from "./authz.js";
import { adminHandlers, type AdminDeps } from "./handlers.js";
import { addReflection } from "./reflection.js";
import { watchEventsHandler } from "./watch.js";

/**
 * AdminService over mTLS, with server reflection (admins only) and grpc.health.v1.Health (open
 * to anyone who completes TLS: probes and load balancers carry no admin certificate).
 */
export async function startAdminServer(listen: Pick<AdminConfig["admin"], "host" | "port" | "tls">, deps: AdminDeps): Promise<RunningGrpcServer> {
  const running = await startGrpcServer({
    host: listen.host,
    port: listen.port,
    credentials: mtlsServerCredentials(listen.tls),
    maxReceiveMessageBytes: 64 * 1024,
    healthServiceNames: [AdminService.typeName],
    register: (server) => {
      server.addService(
        toGrpcService(AdminService),
        implement(AdminService, { ...adminHandlers(deps), watchEvents: watchEventsHandler(deps) }, (err, method) =>
          deps.logger.error({ err: (err as Error).message, method }, "admin handler failed"),
        ),
      );
      addReflection(server, [file_pwsync_v1_admin], async (call, method) => {
        await requireAdmin(call, method, deps.denials);
      });
    },
  });
  running.setServing(true);
  return running;
}
