import { loadConfig } from "@pwsync/config";
import { openEventLog } from "@pwsync/eventlog";
import { graphClientFromConfig } from "@pwsync/graph";
import { insecureHealthServer } from "@pwsync/grpc";
import { createLogger } from "@pwsync/log";
import { runService } from "@pwsync/service-runtime";
import { resolverConfigSchema } from "./config.js";
import { startResolver } from "./processor.js";
import { startTelemetry, telemetryConfigSchema } from "@pwsync/telemetry";

await runService(
  "resolver",
  async (logger) => {
    const config = loadConfig(resolverConfigSchema);
    const telemetry = await startTelemetry({ serviceName: "resolver", settings: loadConfig(telemetryConfigSchema).telemetry });
    const log = await openEventLog(config.database.url, { applicationName: "pwsync-resolver", maxConnections: config.database.maxConnections });
    const graph = await graphClientFromConfig(config.graph);
    const processor = await startResolver({
      log,
      graph,
      logger,
      matchOrder: config.resolver.matchOrder,
      retainSecretOnFailure: config.resolver.retainSecretOnFailure,
    });
    const health = await insecureHealthServer("127.0.0.1", config.resolver.healthPort, "pwsync.v1.Resolver");
    logger.info(
      { event: "ready", matchOrder: config.resolver.matchOrder, graph: config.graph.baseUrl, healthPort: health.port },
      "resolver consuming ChangeCaptured",
    );
    return async () => {
      health.setServing(false);
      await processor.stop();
      await health.shutdown(100);
      graph.close();
      await log.close();
      await telemetry.shutdown();
    };
  },
  createLogger,
);
