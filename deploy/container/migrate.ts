// One-shot schema migration (compose `migrate` service, Kubernetes Job / pre-upgrade hook).
// Every service also migrates at start under kysely's lock table, so this is not required for
// correctness; it makes an upgrade's schema change a visible, separately failing step that
// finishes before new replicas roll out.
import { databaseSection, loadConfig, z } from "@pwsync/config";
import { readFileSync } from "node:fs";
import { ensureServiceRole, grantServiceRole, openEventLog } from "@pwsync/eventlog";
import { createLogger } from "@pwsync/log";

const logger = createLogger({ service: "migrate" });
try {
  const config = loadConfig(z.object({ database: databaseSection }));
  const log = await openEventLog(config.database.url, { applicationName: "pwsync-migrate", maxConnections: 2 });
  // Grafana's audit view reads the event log through a read-only role; it is granted exactly the
  // tables it needs (never sealed_secrets), after the migration created them.
  const readonlyRole = process.env.PWSYNC_MIGRATE_READONLY_ROLE;
  if (readonlyRole) {
    if (!/^[a-z_][a-z0-9_]*$/.test(readonlyRole)) throw new Error(`PWSYNC_MIGRATE_READONLY_ROLE ${JSON.stringify(readonlyRole)} is not a plain role name`);
    await log.pool.query(`GRANT SELECT ON events, change_summaries, agent_status TO ${readonlyRole}`);
    logger.info({ role: readonlyRole }, "read-only role granted the audit tables");
  }
  // The services' own role: rows yes, schema and triggers no. Created or updated here (this job
  // runs as the owner), and re-granted after every migration so new tables are covered.
  const serviceRole = process.env.PWSYNC_MIGRATE_SERVICE_ROLE;
  if (serviceRole) {
    const passwordFile = process.env.PWSYNC_MIGRATE_SERVICE_PASSWORD_FILE;
    // Created when missing; an existing role is left alone (in Kubernetes prod CloudNativePG
    // manages it, and this job's owner may not alter roles).
    const exists = await log.pool.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [serviceRole]);
    if (passwordFile && !exists.rowCount) await ensureServiceRole(log.pool, serviceRole, readFileSync(passwordFile, "utf8").trim());
    await grantServiceRole(log.pool, serviceRole);
    logger.info({ role: serviceRole }, "service role granted rows, no DDL");
  }
  await log.close();
  logger.info({}, "event log schema is up to date");
} catch (err) {
  logger.fatal({ err: (err as Error).message }, "migration failed");
  logger.flush?.();
  process.exitCode = 1;
}
