import { loadConfig } from "@pwsync/config";
import { openEventLog } from "@pwsync/eventlog";
import { createLogger } from "@pwsync/log";
import { runService } from "@pwsync/service-runtime";
import { ingestConfigSchema } from "./config.js";
import { startIngest } from "./server.js";
import { startTelemetry, telemetryConfigSchema } from "@pwsync/telemetry";

await runService(
  "ingest",
  async (logger) => {
    const config = loadConfig(ingestConfigSchema);
    const telemetry = await startTelemetry({ serviceName: "ingest", settings: loadConfig(telemetryConfigSchema).telemetry });
    const log = await openEventLog(config.database.url, { applicationName: "pwsync-ingest" });
    const server = await startIngest(config, log, logger);
    return async () => {
      await server.shutdown();
      await log.close();
      await telemetry.shutdown();
    };
  },
  createLogger,
);
