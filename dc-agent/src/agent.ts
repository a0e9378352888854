import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import type { Ack } from "@pwsync/agent-link";
import { loadRecipientPublicKey } from "@pwsync/crypto";
import type { Logger } from "@pwsync/log";
import { captureChange } from "./capture/capture.js";
import { ScopeStage } from "./capture/scope.js";
import type { AgentConfig } from "./config.js";
import { startFrameServer } from "./endpoint/frameServer.js";
import { startPipeBroker } from "./endpoint/pipeBroker.js";
import type { AckStatus, DecodedFrame } from "./frame/index.js";
import { Directory } from "./ldap/directory.js";
import { DurableQueue } from "./queue/durableQueue.js";
import { QueueAlarms } from "./sender/alarms.js";
import { heartbeatAny } from "./sender/heartbeat.js";
import { Sender, type NamedEndpoint } from "./sender/sender.js";
import { startSambaSource, type SambaSource } from "./samba/sambaSource.js";
import { drainSpool } from "./spool/drainSpool.js";
import { defaultSpoolDir, readSpoolFacts } from "./spool/spoolFacts.js";
import { nativeOwnerCheck, posixOwnerCheck } from "./spool/spoolOwner.js";
import { dpapiUnprotect, noProtection } from "./spool/unprotect.js";
import { AGENT_VERSION } from "./version.js";

export interface RunningAgent {
  /** Sealed changes waiting for the LDAP scope check. */
  intake: DurableQueue;
  /** Changes in scope, waiting for ingest's commit ack. */
  queue: DurableQueue;
  sender: Sender;
  stop(): Promise<void>;
}

export function spoolDirOf(config: AgentConfig): string {
  return config.spool.dir ?? defaultSpoolDir(process.platform, process.env, config.agent.dataDir);
}

export function endpointsOf(config: AgentConfig["ingest"]): NamedEndpoint[] {
  const tls = { caPem: readFileSync(config.tls.caFile), certPem: readFileSync(config.tls.certFile), keyPem: readFileSync(config.tls.keyFile) };
  const one = (role: NamedEndpoint["role"], s: { address: string; serverName?: string | undefined }): NamedEndpoint => ({
    role,
    address: s.address,
    ...tls,
    ...(s.serverName ? { serverName: s.serverName } : {}),
  });
  return [one("primary", config.primary), ...(config.secondary ? [one("secondary", config.secondary)] : [])];
}

/** Windows: is our DLL listed in LSA's Notification Packages (loaded at the next boot)? */
function filterRegistered(): boolean {
  if (process.platform !== "win32") return false;
  try {
    const out = execFileSync("reg", ["query", "HKLM\\SYSTEM\\CurrentControlSet\\Control\\Lsa", "/v", "Notification Packages"], {
      encoding: "utf8",
      windowsHide: true,
    });
    return /pwsync-filter/i.test(out);
  } catch {
    return false;
  }
}

export async function startAgent(config: AgentConfig, logger: Logger, hooks: { beforeRecordingAck?: (ack: Ack) => void } = {}): Promise<RunningAgent> {
  // The configured key until ingest announces another: the reset-executor rotates its sealing
  // key, and ingest (authenticated by its server certificate) names the current one in every
  // heartbeat answer. Both keys are accepted during the overlap, so the switch loses nothing.
  let recipient = loadRecipientPublicKey(readFileSync(config.ingest.sealingPublicKeyFile, "utf8"));
  const directory = new Directory(config.ldap);
  // Two durable queues: the intake takes a sealed change the moment it arrives (then the
  // source is acknowledged), the outbox holds what passed the scope check, for the sender.
  const intake = await DurableQueue.open(path.join(config.agent.dataDir, "intake"), { segmentBytes: config.queue.segmentBytes, logger });
  const queue = await DurableQueue.open(path.join(config.agent.dataDir, "queue"), { segmentBytes: config.queue.segmentBytes, logger });
  const endpoints = endpointsOf(config.ingest);
  let lastChangeSeenAt: Date | undefined;
  let framesSeen = 0;

  // Every capture source feeds this one handler (the filter's pipe and spool; other sources
  // the same way): seal, fsync into the intake, then acknowledge. A disk error throws, and the
  // frame server answers "retry later" so the filter keeps the frame.
  const handle = async (frame: DecodedFrame): Promise<AckStatus> => {
    framesSeen++;
    await captureChange({ domainController: config.agent.domainController, recipient, intake, logger, onCaptured: (at) => (lastChangeSeenAt = at) }, frame);
    return "accepted";
  };
  const scope = new ScopeStage({ intake, outbox: queue, directory, logger, retryDelayMs: config.ldap.retryDelayMs });
  scope.start();

  const sender = new Sender({
    queue,
    endpoints,
    config: config.ingest,
    dataDir: config.agent.dataDir,
    logger,
    ...(hooks.beforeRecordingAck ? { beforeRecordingAck: hooks.beforeRecordingAck } : {}),
  });
  sender.start();
  const pipeHelper = config.endpoint.pipeHelper ?? process.env.PWSYNC_PIPE_HELPER;
  const isPipe = /^\\\\[.?]\\pipe\\/i.test(config.endpoint.path);
  if (isPipe && !pipeHelper)
    logger.error(
      { endpoint: config.endpoint.path },
      "ALARM the filter's pipe is served without pwsync-pipe.exe: Node gives it the default DACL (Everyone may open it for reading) and accepts remote clients; set endpoint.pipeHelper (PWSYNC_PIPE_HELPER)",
    );
  const frameServer =
    isPipe && pipeHelper
      ? await startPipeBroker({ command: [pipeHelper], pipeName: config.endpoint.path, logger, handle })
      : await startFrameServer({
          path: config.endpoint.path,
          readTimeoutMs: config.endpoint.readTimeoutMs,
          maxConnections: config.endpoint.maxConnections,
          logger,
          handle,
        });

  // On a Samba DC, changes come from syncpasswords instead of (or beside) the filter's endpoint.
  const samba: SambaSource | undefined = config.samba?.enabled ? await startSambaSource(config.samba, config.agent.dataDir, handle, logger) : undefined;

  const timers: NodeJS.Timeout[] = [];
  // One spool, one owner: always drained, at the location the filter uses by default.
  let spoolBusy = false;
  const spoolDir = spoolDirOf(config);
  {
    const unprotect = config.spool.protection === "dpapi" ? dpapiUnprotect : noProtection;
    const checkOwners = process.platform === "win32" ? nativeOwnerCheck(config.endpoint.pipeHelper ?? process.env.PWSYNC_PIPE_HELPER) : posixOwnerCheck;
    const drain = () => {
      if (spoolBusy) return;
      spoolBusy = true;
      drainSpool(spoolDir, unprotect, handle, logger, checkOwners)
        .catch((err: unknown) => logger.error({ err: (err as Error).message }, "spool drain failed"))
        .finally(() => (spoolBusy = false));
    };
    drain();
    timers.push(setInterval(drain, config.spool.scanIntervalMs));
  }

  const alarms = new QueueAlarms({ queueAgeMs: config.alarms.queueAgeMs, queueDepth: config.alarms.queueDepth, spoolAgeMs: config.alarms.spoolAgeMs }, logger);
  const queueFacts = () => {
    const heads = [intake.head(), queue.head()].filter((h) => h !== undefined);
    const oldest = Math.min(...heads.map((h) => h.enqueuedAt.getTime()));
    return { depth: intake.depth + queue.depth, oldestAgeMs: heads.length ? Date.now() - oldest : 0, spool: readSpoolFacts(spoolDir) };
  };
  timers.push(setInterval(() => alarms.check(queueFacts()), config.alarms.checkIntervalMs));
  const beat = () => {
    const facts = queueFacts();
    heartbeatAny(
      endpoints,
      {
        agentVersion: AGENT_VERSION,
        // On Samba: is syncpasswords running (false raises the server's "filter not loaded" watchdog).
        filterLoaded: samba ? samba.running() : framesSeen > 0 || filterRegistered(),
        queueDepth: facts.depth,
        oldestQueuedAgeSeconds: facts.oldestAgeMs / 1000,
        spoolDepth: facts.spool.depth,
        oldestSpooledAgeSeconds: facts.spool.oldestAgeMs / 1000,
        ...(lastChangeSeenAt ? { lastChangeSeenAt } : {}),
        domainController: config.agent.domainController,
      },
      config.ingest.timeoutMs,
    ).then(
      ({ role, response }) => {
        logger.debug({ server: role, queueDepth: facts.depth }, "heartbeat sent");
        if (!response.sealingPublicKeyPem) return;
        try {
          const announced = loadRecipientPublicKey(response.sealingPublicKeyPem);
          if (announced.keyId === recipient.keyId) return;
          logger.warn({ from: recipient.keyId, to: announced.keyId, server: role }, "sealing key rotated by the server; new changes are sealed to the new key");
          recipient = announced;
        } catch (err) {
          logger.warn({ err: (err as Error).message }, "ingest announced a sealing key that is not an X25519 public key; keeping the current one");
        }
      },
      (err: unknown) => logger.warn({ err: (err as Error).message }, "heartbeat not delivered"),
    );
  };
  timers.push(setInterval(beat, config.ingest.heartbeatIntervalMs));
  beat();
  for (const t of timers) t.unref();

  const facts = queueFacts();
  alarms.check(facts);
  // The seed's start lines ("Loaded Database: …statedb.txt", "PasswordClientService v… Started"), as one record.
  logger.info(
    {
      version: AGENT_VERSION,
      queue: path.join(config.agent.dataDir, "queue"),
      queueDepth: facts.depth,
      oldestQueuedAgeSeconds: Math.floor(facts.oldestAgeMs / 1000),
      endpoint: config.endpoint.path,
      primary: config.ingest.primary.address,
      secondary: config.ingest.secondary?.address,
      ldap: config.ldap.url,
      sealingKeyId: recipient.keyId,
    },
    `dc-agent v${AGENT_VERSION} started`,
  );

  return {
    intake,
    queue,
    sender,
    async stop() {
      for (const t of timers) clearInterval(t);
      await samba?.stop();
      await frameServer.close();
      await scope.stop();
      await sender.stop();
      await intake.close();
      await queue.close();
      await directory.close();
    },
  };
}
