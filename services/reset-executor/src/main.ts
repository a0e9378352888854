import { loadConfig } from "@pwsync/config";
import { loadKeyRing } from "@pwsync/crypto";
import { openEventLog } from "@pwsync/eventlog";
import { graphClientFromConfig } from "@pwsync/graph";
import { insecureHealthServer } from "@pwsync/grpc";
import { createLogger } from "@pwsync/log";
import { runService } from "@pwsync/service-runtime";
import { executorConfigSchema } from "./config.js";
import { startExecutor } from "./processor.js";
import { paceFor } from "./slot-grant.js";
import { SharedWriteBudget } from "./write-budget.js";
import { startSecretReaper } from "./secret-reaper.js";
import { startSealingKeyManager } from "./sealing-keys/manager.js";
import { startTelemetry, telemetryConfigSchema } from "@pwsync/telemetry";

await runService(
  "reset-executor",
  async (logger) => {
    const config = loadConfig(executorConfigSchema);
    const telemetry = await startTelemetry({ serviceName: "reset-executor", settings: loadConfig(telemetryConfigSchema).telemetry });
    const keys = loadKeyRing(config.executor.keysDir);
    const log = await openEventLog(config.database.url, { applicationName: "pwsync-reset-executor", maxConnections: config.database.maxConnections });
    const graph = await graphClientFromConfig(config.graph);
    const { writesPerWindow, windowSeconds } = config.executor.rateLimit;
    // One budget for all replicas, in Postgres: a restart or a new replica knows the writes made.
    const limiter = new SharedWriteBudget(log.db, writesPerWindow, windowSeconds * 1000, paceFor(writesPerWindow, windowSeconds * 1000));
    const shutdown = new AbortController();
    const retentionMs = config.executor.retainSecretOnFailureHours * 3_600_000;
    const processor = await startExecutor({
      log,
      graph,
      logger,
      keys,
      config: config.executor,
      limiter,
      requestTimeoutMs: config.graph.requestTimeoutMs,
      signal: shutdown.signal,
      retainSecretOnFailure: retentionMs > 0,
    });
    const reaper = startSecretReaper(log, retentionMs, logger);
    const keyManager = startSealingKeyManager({
      log,
      logger,
      keysDir: config.executor.keysDir,
      ring: keys,
      policy: {
        rotateAfterMs: config.executor.sealingKeys.rotateAfterDays * 86_400_000,
        overlapMs: config.executor.sealingKeys.overlapDays * 86_400_000,
        destroyGraceMs: 10 * 60_000,
      },
    });
    const health = await insecureHealthServer("127.0.0.1", config.executor.healthPort, "pwsync.v1.ResetExecutor");
    logger.info(
      {
        event: "ready",
        keyIds: [...keys.keys()],
        retryLimit: config.executor.retryLimit,
        rateLimit: config.executor.rateLimit,
        graph: config.graph.baseUrl,
        healthPort: health.port,
      },
      "reset-executor consuming UserResolved",
    );
    return async () => {
      await reaper.stop();
      await keyManager.stop();
      health.setServing(false);
      shutdown.abort();
      await processor.stop();
      await health.shutdown(100);
      graph.close();
      await log.close();
      await telemetry.shutdown();
    };
  },
  createLogger,
);
