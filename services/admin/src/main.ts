import { loadConfig } from "@pwsync/config";
import { openEventLog } from "@pwsync/eventlog";
import { graphClientFromConfig, type GraphClient } from "@pwsync/graph";
import { createLogger } from "@pwsync/log";
import { runService } from "@pwsync/service-runtime";
import { denialRecorder } from "./audit.js";
import { adminConfigSchema } from "./config.js";
import { tenantKind } from "./handlers.js";
import { startAdminServer } from "./server.js";
import { testAlertSender } from "./test-alert.js";
import { startWatchdog } from "./watchdog.js";
import { watchdogMailer } from "./watchdog-mail.js";
import { TenantKind } from "@pwsync/proto";
import { observeBacklog, startTelemetry, telemetryConfigSchema } from "@pwsync/telemetry";
import { backlog } from "./backlog.js";

await runService(
  "admin",
  async (logger) => {
    const config = loadConfig(adminConfigSchema);
    const telemetry = await startTelemetry({ serviceName: "admin", settings: loadConfig(telemetryConfigSchema).telemetry });
    const log = await openEventLog(config.database.url, { applicationName: "pwsync-admin", maxConnections: config.database.maxConnections });
    const graphSection = config.graph;
    // Made when first asked for, and kept: the admin API serves without MSAL and the Graph SDK
    // loaded. A failed attempt (an unreadable certificate file) is tried again on the next call.
    let graphClient: Promise<GraphClient> | undefined;
    const makeGraphClient = (section: NonNullable<typeof graphSection>) =>
      graphClientFromConfig(section).catch((err: unknown) => {
        graphClient = undefined;
        throw err;
      });
    const graph = graphSection ? { client: () => (graphClient ??= makeGraphClient(graphSection)), baseUrl: graphSection.baseUrl } : undefined;
    const testAlert = config.notifier ? testAlertSender(config.notifier) : undefined;
    const deps = { log, logger, graph, testAlert, watchdog: config.admin.watchdog, denials: denialRecorder(log, logger, config.admin.deniedRecordsPerMinute) };
    const server = await startAdminServer(config.admin, deps);
    // Consumer lag and agent queues as metrics, read only when the SDK collects.
    if (telemetry.enabled) observeBacklog(() => backlog(log));
    const watchdog = config.admin.watchdog.enabled
      ? startWatchdog({
          log,
          logger,
          settings: config.admin.watchdog,
          ...(testAlert && config.admin.watchdog.email ? { notify: watchdogMailer(testAlert) } : {}),
        })
      : undefined;
    const tenant = tenantKind(deps);
    if (tenant === TenantKind.SANDBOX) logger.warn({ graph: graph?.baseUrl }, "Graph points at the SANDBOX tenant: no real password is changed");
    logger.info(
      { event: "ready", host: config.admin.host, port: server.port, tenant: TenantKind[tenant], watchdog: config.admin.watchdog.enabled },
      "admin API listening (mTLS, reflection on)",
    );
    return async () => {
      await watchdog?.stop();
      await server.shutdown();
      testAlert?.close();
      (await graphClient?.catch(() => undefined))?.close();
      await log.close();
      await telemetry.shutdown();
    };
  },
  createLogger,
);
