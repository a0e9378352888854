import { exitWhenParentDies } from "@pwsync/service-runtime";
import { ConfigError, loadConfig } from "@pwsync/config";
import { createLogger } from "@pwsync/log";
import { notifierFileConfigSchema } from "./config.js";
import { startNotifier } from "./notifier.js";
import { startTelemetry, telemetryConfigSchema } from "@pwsync/telemetry";

const logger = createLogger({ service: "notifier" });
let config;
try {
  config = loadConfig(notifierFileConfigSchema);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  logger.fatal({}, err.message);
  process.exit(2);
}

const telemetry = await startTelemetry({ serviceName: "notifier", settings: loadConfig(telemetryConfigSchema).telemetry });
const notifier = await startNotifier(config, { logger });
// Under the dev launcher, stop (gracefully, via our own SIGTERM handler) when it is gone.
exitWhenParentDies(() => process.kill(process.pid, "SIGTERM"));
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    logger.info({ signal }, "stopping");
    void notifier
      .stop()
      .then(() => telemetry.shutdown())
      .then(() => process.exit(0));
  });
}
