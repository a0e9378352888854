import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { crashLocalPostgres, startLocalPostgres, type LocalPostgres } from "@pwsync/local-postgres";

export interface RestartablePostgres {
  connectionString(database: string): string;
  createDatabase(name: string): Promise<void>;
  /** Kills the server the way a crash or failover does (`pg_ctl stop -m immediate`), then starts it again on the same port. */
  crashAndRestart(downMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A PostgreSQL server of a test's own, for tests that restart it: the run's shared server must
 * stay up for every other test file.
 */
export async function startRestartablePostgres(): Promise<RestartablePostgres> {
  const root = mkdtempSync(path.join(tmpdir(), "pwsync-restart-pg-"));
  const dataDir = path.join(root, "data");
  let server: LocalPostgres = await startLocalPostgres({ dataDir });
  const port = server.port;
  return {
    connectionString: (database) => server.connectionString(database),
    createDatabase: (name) => server.createDatabase(name),
    async crashAndRestart(downMs = 300) {
      crashLocalPostgres(dataDir);
      // The old handle's stop() would wait forever for an exit that already happened.
      await new Promise((r) => setTimeout(r, downMs));
      server = await startLocalPostgres({ dataDir, port });
    },
    async stop() {
      await server.stop().catch(() => {});
      rmSync(root, { recursive: true, force: true });
    },
  };
}
