import { Kysely, Migrator, PostgresDialect } from "kysely";
import pg from "pg";
import { migrationProvider } from "./migrations/index.js";
import { prepareMarkedStatements } from "./preparedStatements.js";
import type { Database } from "./schema.js";

export interface EventLog {
  readonly db: Kysely<Database>;
  readonly pool: pg.Pool;
  readonly connectionString: string;
  close(): Promise<void>;
}

export interface OpenOptions {
  maxConnections?: number;
  /** Run pending migrations (default true). */
  migrate?: boolean;
  applicationName?: string;
}

export async function openEventLog(connectionString: string, options: OpenOptions = {}): Promise<EventLog> {
  const pool = new pg.Pool({
    connectionString,
    max: options.maxConnections ?? 10,
    application_name: options.applicationName ?? "pwsync",
    // An open transaction holds back every consumer (they only read below the oldest running
    // transaction id), so an abandoned one must not live long.
    options: "-c idle_in_transaction_session_timeout=30000",
  });
  // A database restart or failover kills every connection. pg-pool listens for errors only on
  // idle clients; a client checked out between two statements of a transaction has no listener
  // then, and an unheard 'error' event ends the process. Each client gets its own listener for
  // its whole life: the failing statement rejects anyway, and pg-pool drops the dead client on
  // release, so the next checkout reconnects.
  pool.on("connect", (client) => {
    client.on("error", () => {});
    prepareMarkedStatements(client);
  });
  pool.on("error", () => {});
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  if (options.migrate ?? true) await migrate(db);
  return {
    db,
    pool,
    connectionString,
    close: () => db.destroy(),
  };
}

export async function migrate(db: Kysely<Database>): Promise<void> {
  const migrator = new Migrator({ db, provider: migrationProvider, migrationTableName: "schema_migrations", migrationLockTableName: "schema_migrations_lock" });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === "Error");
    throw new Error(`event log migration ${failed?.migrationName ?? "(unknown)"} failed: ${(error as Error).message ?? String(error)}`, { cause: error });
  }
}
