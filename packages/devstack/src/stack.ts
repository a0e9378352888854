import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { deepMerge } from "@pwsync/config";
import { generateRecipientKeyPair, loadRecipientPublicKey, type RecipientPublicKey } from "@pwsync/crypto";
import { ensureServiceRole, grantServiceRole, openEventLog } from "@pwsync/eventlog";
import { crashLocalPostgres, freePort, startLocalPostgres, type LocalPostgres } from "@pwsync/local-postgres";
import { ensureDevPki, type DevPkiPaths } from "@pwsync/pki";
import { stringify as toYaml } from "yaml";
import { compiledServices } from "./compiled.js";
import { demoUsers, type SandboxUserSpec } from "./demo-users.js";
import { spawnService, stopService, type RunningService } from "./process.js";
import { startReaper } from "./reaper.js";
import { restartDelayMs } from "./supervise.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const DEV_STAND_INS = new Set(["sandbox-tenant", "smtp-catcher"]);
const sourceEntry = (service: string) => path.join(repoRoot, DEV_STAND_INS.has(service) ? "dev" : "services", service, "src", "main.ts");

export { demoUsers, type SandboxUserSpec };

export const WORKER_SERVICES = ["resolver", "reset-executor", "notifier"] as const;
export type ServiceName = "sandbox-tenant" | "smtp-catcher" | "ingest" | "admin" | (typeof WORKER_SERVICES)[number];

export interface StackOptions {
  /** Everything the stack keeps: Postgres data, PKI, keys, config, logs, caught mail. */
  dataDir: string;
  /** "fixed": the documented default ports (npm start); "random": free ports (tests, demo, bench). */
  ports?: "fixed" | "random";
  /** Configuration merged over the generated pwsync.yaml (a user's file, or a test's settings). */
  overlay?: Record<string, unknown>;
  agents?: string[];
  sandbox?: { users?: SandboxUserSpec[]; writeBudget?: string; scryptCost?: number; persistState?: boolean };
  /** Replicas per worker service (default 1 each). */
  replicas?: Partial<Record<(typeof WORKER_SERVICES)[number], number>>;
  progress?: (message: string) => void;
  /**
   * "compiled" (default): the services run the JavaScript `npm run build` makes, as in the
   * container image (built on first use, cached by content). "source": TypeScript through tsx.
   * PWSYNC_SERVICES_FROM=source sets the default.
   */
  runFrom?: "compiled" | "source";
}

export const FIXED_PORTS = { postgres: 54329, ingest: 7443, admin: 7444, sandbox: 8443, smtp: 2525 } as const;

export interface Stack {
  readonly dataDir: string;
  readonly configFile: string;
  readonly pki: DevPkiPaths;
  /** The schema owner's URL (migrations, tests' own checks); services never get it. */
  readonly databaseUrl: string;
  /** What the services connect with: a role that owns nothing (see grantServiceRole). */
  readonly serviceDatabaseUrl: string;
  /** The embedded Postgres server's pid (tests make the database unreachable with it). */
  readonly postgresPid: number | undefined;
  readonly ingestAddress: string;
  readonly adminAddress: string;
  readonly sandboxUrl: string | undefined;
  readonly smtpPort: number;
  readonly mailDir: string;
  readonly logsDir: string;
  readonly recipient: RecipientPublicKey;
  readonly services: Map<string, RunningService>;
  agentEndpoint(agent: string): { address: string; caPem: Buffer; certPem: Buffer; keyPem: Buffer };
  /** kill -9 one service instance (e.g. "reset-executor#0"). */
  kill(instance: string, signal?: NodeJS.Signals): Promise<void>;
  /** Stops (if running) and starts one instance again; `readyTimeoutMs` for a loaded machine. */
  restart(instance: string, options?: { readyTimeoutMs?: number }): Promise<void>;
  /** Crashes PostgreSQL (immediate stop: every connection cut) and starts it again on its port. */
  crashPostgres(downMs?: number): Promise<void>;
  /**
   * Keep every service running (npm start): one that exits on its own is restarted after a
   * backoff that grows while it keeps failing, each restart announced through `say`.
   */
  supervise(say: (message: string) => void): void;
  stop(): Promise<void>;
}

function ensureSealingKey(keysDir: string): RecipientPublicKey {
  mkdirSync(keysDir, { recursive: true, mode: 0o700 });
  const existing = readdirSync(keysDir)
    .filter((n) => n.endsWith(".pub.pem"))
    .sort();
  if (existing.length > 0) return loadRecipientPublicKey(readFileSync(path.join(keysDir, existing.at(-1)!), "utf8"));
  const pair = generateRecipientKeyPair();
  writeFileSync(path.join(keysDir, `${pair.keyId}.key.pem`), pair.privatePem, { mode: 0o600 });
  writeFileSync(path.join(keysDir, `${pair.keyId}.pub.pem`), pair.publicPem, { mode: 0o644 });
  return loadRecipientPublicKey(pair.publicPem);
}

const SERVICE_ROLE = "pwsync_service";

function readOrCreateSecret(file: string): string {
  if (existsSync(file)) return readFileSync(file, "utf8").trim();
  const secret = randomBytes(24).toString("base64url");
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return secret;
}

function hasRealGraphCredentials(overlay: Record<string, unknown> | undefined): boolean {
  const graph = overlay?.graph as Record<string, unknown> | undefined;
  return Boolean(graph && (graph.clientSecret || graph.certificatePath));
}

/**
 * The whole server side on one machine: embedded PostgreSQL, dev PKI, sealing key, the sandbox
 * tenant (only when no real Graph credentials are configured), an SMTP catcher, and every
 * service as its own process reading one generated pwsync.yaml.
 */
export async function startStack(options: StackOptions): Promise<Stack> {
  const dataDir = path.resolve(options.dataDir);
  const say = options.progress ?? (() => {});
  const fixed = options.ports === "fixed";
  const dirs = {
    pg: path.join(dataDir, "postgres"),
    pki: path.join(dataDir, "pki"),
    keys: path.join(dataDir, "keys"),
    logs: path.join(dataDir, "logs"),
    mail: path.join(dataDir, "mail"),
    sandbox: path.join(dataDir, "sandbox"),
  };
  for (const dir of [dataDir, dirs.logs, dirs.mail, dirs.sandbox]) mkdirSync(dir, { recursive: true });
  const services = new Map<string, RunningService>();
  const specs = new Map<string, Parameters<typeof spawnService>[0]>();
  let postgres: LocalPostgres | undefined;
  // Whatever ends this process, nothing it started outlives it (see reaper-main.ts).
  const reaper = startReaper();
  let stopping = false;
  /** Instances stopped on purpose by restart(): their exit is not a crash. */
  const restarting = new WeakSet<RunningService>();

  const stopAll = async () => {
    stopping = true;
    const order = ["ingest", "admin", ...WORKER_SERVICES, "smtp-catcher", "sandbox-tenant"];
    const byOrder = [...services.values()].sort((a, b) => order.indexOf(a.name.split("#")[0]!) - order.indexOf(b.name.split("#")[0]!));
    for (const service of byOrder) await stopService(service);
    await postgres?.stop();
    reaper.release();
  };

  try {
    const runFrom = options.runFrom ?? (process.env.PWSYNC_SERVICES_FROM === "source" ? "source" : "compiled");
    let entry = sourceEntry;
    if (runFrom === "compiled") {
      say("compiling the services (cached while the sources do not change)");
      const compiled = await compiledServices(repoRoot);
      entry = (service) => (DEV_STAND_INS.has(service) ? path.join(compiled.devDist, `${service}.js`) : path.join(compiled.dist, `${service}.js`));
    }
    say("starting PostgreSQL (embedded)");
    postgres = await startLocalPostgres({ dataDir: dirs.pg, port: fixed ? FIXED_PORTS.postgres : undefined, ownSignals: true });
    reaper.watch(postgres.pid, "SIGINT");
    await postgres.createDatabase("pwsync");
    const databaseUrl = postgres.connectionString("pwsync");
    // Migrate once up front, as the owner, so the services start against a ready schema; then
    // the services get a role that can read and write rows but not alter the schema or the
    // append-only triggers.
    const ownerLog = await openEventLog(databaseUrl, { maxConnections: 1 });
    const servicePassword = readOrCreateSecret(path.join(dataDir, "postgres-service-password"));
    await ensureServiceRole(ownerLog.pool, SERVICE_ROLE, servicePassword);
    await grantServiceRole(ownerLog.pool, SERVICE_ROLE);
    await ownerLog.close();
    const serviceUrl = new URL(databaseUrl);
    serviceUrl.username = SERVICE_ROLE;
    serviceUrl.password = servicePassword;
    const serviceDatabaseUrl = serviceUrl.toString();

    const agents = options.agents ?? ["dc01", "dc02"];
    say("preparing dev PKI and sealing key");
    const pki = await ensureDevPki(dirs.pki, { agents, admins: ["admin"] });
    const recipient = ensureSealingKey(dirs.keys);
    const baseEnv = { ...process.env, PWSYNC_CONFIG: path.join(dataDir, "pwsync.yaml"), PWSYNC_PARENT_PID: String(process.pid) };
    // Every service prints one structured {"event":"ready", …} line once it serves; its port
    // fields are the ready value (log wording may change freely).

    let sandboxUrl: string | undefined;
    let graph: Record<string, unknown> = {};
    if (!hasRealGraphCredentials(options.overlay)) {
      const usersFile = path.join(dirs.sandbox, "users.json");
      if (options.sandbox?.users || !existsSync(usersFile)) writeFileSync(usersFile, JSON.stringify(options.sandbox?.users ?? demoUsers(1000), null, 1));
      const clientSecret = readOrCreateSecret(path.join(dirs.sandbox, "client-secret"));
      const tenantId = "00000000-0000-0000-0000-00000000cafe";
      const clientId = "00000000-0000-0000-0000-0000000a9910";
      say("starting the SANDBOX tenant (no Graph credentials configured: nothing reaches Microsoft)");
      const spec = {
        name: "sandbox-tenant",
        entry: entry("sandbox-tenant"),
        env: {
          ...baseEnv,
          SANDBOX_PORT: String(fixed ? FIXED_PORTS.sandbox : 0),
          SANDBOX_PKI_DIR: dirs.pki,
          SANDBOX_USERS_FILE: usersFile,
          SANDBOX_CLIENT_SECRET: clientSecret,
          SANDBOX_TENANT_ID: tenantId,
          SANDBOX_CLIENT_ID: clientId,
          ...(options.sandbox?.persistState === false ? {} : { SANDBOX_STATE_FILE: path.join(dirs.sandbox, "state.json") }),
          SANDBOX_WRITE_BUDGET: options.sandbox?.writeBudget ?? "3000/150",
          ...(options.sandbox?.scryptCost ? { SANDBOX_SCRYPT_COST: String(options.sandbox.scryptCost) } : {}),
        },
        logFile: path.join(dirs.logs, "sandbox-tenant.log"),
        reaper,
        ready: (line: Record<string, unknown>) => (line.event === "ready" ? line.url : undefined),
      };
      specs.set("sandbox-tenant", spec);
      const sandbox = await spawnService<string>(spec);
      services.set("sandbox-tenant", sandbox);
      sandboxUrl = sandbox.readyValue;
      // A restart must come back where the generated config points.
      spec.env.SANDBOX_PORT = new URL(sandboxUrl).port;
      graph = { tenantId, clientId, clientSecret, authorityHost: sandboxUrl, baseUrl: sandboxUrl, caFile: pki.ca.cert };
    }

    say("starting the SMTP catcher");
    const smtpSpec = {
      name: "smtp-catcher",
      entry: entry("smtp-catcher"),
      env: { ...baseEnv, PWSYNC_SMTP_CATCHER_PORT: String(fixed ? FIXED_PORTS.smtp : 0), PWSYNC_SMTP_CATCHER_DIR: dirs.mail },
      logFile: path.join(dirs.logs, "smtp-catcher.log"),
      reaper,
      ready: (line: Record<string, unknown>) => (line.event === "ready" ? line.port : undefined),
    };
    specs.set("smtp-catcher", smtpSpec);
    const smtp = await spawnService<number>(smtpSpec);
    services.set("smtp-catcher", smtp);
    // The catcher binds first, so a fixed-port restart reuses the port it was given.
    smtpSpec.env.PWSYNC_SMTP_CATCHER_PORT = String(smtp.readyValue);

    const ingestPort = fixed ? FIXED_PORTS.ingest : await freePort();
    const adminPort = fixed ? FIXED_PORTS.admin : await freePort();
    const generated = {
      database: { url: serviceDatabaseUrl, maxConnections: 10 },
      graph,
      ingest: {
        host: "127.0.0.1",
        port: ingestPort,
        // Ingest trusts only the agent CA, the admin API only the admin CA.
        tls: { caFile: pki.agentCa.cert, certFile: pki.server.cert, keyFile: pki.server.key },
        acceptedKeyIds: [recipient.keyId],
        // The demo tenant's users are all in contoso.example.
        agentScopes: Object.fromEntries(agents.map((agent) => [agent, ["contoso.example"]])),
      },
      admin: {
        host: "127.0.0.1",
        port: adminPort,
        tls: { caFile: pki.adminCa.cert, certFile: pki.server.cert, keyFile: pki.server.key },
      },
      resolver: { matchOrder: ["immutableId", "userPrincipalName", "mail"] },
      executor: { keysDir: dirs.keys, retryLimit: 5 },
      notifier: {
        smtp: { host: "127.0.0.1", port: smtp.readyValue, startTls: "off", from: "pwsync@contoso.example" },
        adminRecipients: ["it-admins@contoso.example"],
        notifyAdmins: true,
        notifyEndUser: true,
        throttle: { maxPerWindow: 5, windowMinutes: 60 },
        health: { host: "127.0.0.1", port: 0 },
      },
    };
    const config = deepMerge(generated, options.overlay ?? {}) as typeof generated;
    const configFile = path.join(dataDir, "pwsync.yaml");
    writeFileSync(configFile, `# Generated by the pwsync launcher; edit the overlay you pass it instead.\n${toYaml(config)}`, { mode: 0o600 });

    say("starting ingest");
    const ingestSpec = {
      name: "ingest",
      entry: entry("ingest"),
      env: baseEnv,
      logFile: path.join(dirs.logs, "ingest.log"),
      reaper,
      ready: (line: Record<string, unknown>) => (line.event === "ready" ? line.port : undefined),
    };
    specs.set("ingest", ingestSpec);
    services.set("ingest", await spawnService(ingestSpec));

    say("starting admin API");
    const adminSpec = {
      name: "admin",
      entry: entry("admin"),
      env: baseEnv,
      logFile: path.join(dirs.logs, "admin.log"),
      reaper,
      ready: (line: Record<string, unknown>) => line.event === "ready",
    };
    specs.set("admin", adminSpec);
    services.set("admin", await spawnService(adminSpec));

    for (const name of WORKER_SERVICES) {
      const count = options.replicas?.[name] ?? 1;
      for (let i = 0; i < count; i++) {
        const instance = `${name}#${i}`;
        say(`starting ${instance}`);
        // Ready value: the instance's plaintext gRPC health port (probes, tests).
        const spec = {
          name: instance,
          entry: entry(name),
          env: baseEnv,
          logFile: path.join(dirs.logs, `${name}-${i}.log`),
          reaper,
          ready: (line: Record<string, unknown>) => (line.event === "ready" ? (line.healthPort ?? true) : undefined),
        };
        specs.set(instance, spec);
        services.set(instance, await spawnService(spec));
      }
    }

    const stack: Stack = {
      dataDir,
      configFile,
      pki,
      databaseUrl,
      serviceDatabaseUrl,
      get postgresPid() {
        return postgres?.pid;
      },
      ingestAddress: `127.0.0.1:${ingestPort}`,
      adminAddress: `127.0.0.1:${adminPort}`,
      sandboxUrl,
      smtpPort: smtp.readyValue,
      mailDir: dirs.mail,
      logsDir: dirs.logs,
      recipient,
      services,
      agentEndpoint: (agent) => {
        const paths = pki.agents[agent];
        if (!paths) throw new Error(`no certificate for agent ${agent}; known: ${Object.keys(pki.agents).join(", ")}`);
        return { address: `127.0.0.1:${ingestPort}`, caPem: readFileSync(pki.ca.cert), certPem: readFileSync(paths.cert), keyPem: readFileSync(paths.key) };
      },
      kill: async (instance, signal = "SIGKILL") => {
        const service = services.get(instance);
        if (!service) throw new Error(`no service ${instance}`);
        service.child.kill(signal);
        await service.exited;
      },
      restart: async (instance, restartOptions) => {
        const spec = specs.get(instance);
        if (!spec) throw new Error(`no service ${instance}`);
        const old = services.get(instance);
        if (old) {
          restarting.add(old);
          await stopService(old);
        }
        services.set(instance, await spawnService({ ...spec, readyTimeoutMs: restartOptions?.readyTimeoutMs ?? spec.readyTimeoutMs }));
      },
      crashPostgres: async (downMs = 500) => {
        const port = postgres!.port;
        reaper.forget(postgres!.pid);
        crashLocalPostgres(dirs.pg);
        await new Promise((r) => setTimeout(r, downMs));
        postgres = await startLocalPostgres({ dataDir: dirs.pg, port, ownSignals: true });
        reaper.watch(postgres.pid, "SIGINT");
      },
      supervise: (announce) => {
        const failures = new Map<string, { count: number; since: number }>();
        const watch = (instance: string, service: RunningService) =>
          service.exited.then(async (code) => {
            if (stopping || restarting.has(service)) return;
            const upMs = Date.now() - (failures.get(instance)?.since ?? 0);
            const count = upMs > 60_000 ? 1 : (failures.get(instance)?.count ?? 0) + 1;
            const delayMs = restartDelayMs(count);
            announce(`${instance} exited (${code}); restarting in ${Math.round(delayMs / 1000)} s (restart ${count} in a row)`);
            await new Promise((r) => setTimeout(r, delayMs));
            if (stopping) return;
            try {
              services.set(instance, await spawnService(specs.get(instance)!));
              failures.set(instance, { count, since: Date.now() });
              announce(`${instance} restarted`);
              watch(instance, services.get(instance)!);
            } catch (err) {
              failures.set(instance, { count, since: Date.now() });
              announce(`${instance} could not restart: ${(err as Error).message.split("\n")[0]}`);
              // spawnService failed, so nothing runs for this instance: try again after the next delay.
              watch(instance, { ...service, exited: Promise.resolve("failed to start") });
            }
          });
        for (const [instance, service] of services) watch(instance, service);
      },
      stop: stopAll,
    };
    return stack;
  } catch (err) {
    await stopAll().catch(() => {});
    throw err;
  }
}
