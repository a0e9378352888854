import type { EventLog } from "@pwsync/eventlog";
import { implement, mtlsServerCredentials, startGrpcServer, toGrpcService, type RunningGrpcServer } from "@pwsync/grpc";
import type { Logger } from "@pwsync/log";
import { AgentIngestService } from "@pwsync/proto";
import { agentDenialRecorder } from "./audit.js";
import type { IngestConfig } from "./config.js";
import { AgentRateLimiter } from "./rate-limit.js";
import { startRevocationList } from "./revocations.js";
import { startAcceptedKeys } from "./accepted-keys.js";
import { agentScopesFromConfig } from "./scope.js";
import { heartbeatHandler, streamChangesHandler, type IngestDeps } from "./service.js";
import { DEFAULT_MAX_CLOCK_SKEW_MS } from "./validate.js";

export async function startIngest(config: IngestConfig, log: EventLog, logger: Logger): Promise<RunningGrpcServer> {
  const settings = config.ingest;
  const revocations = await startRevocationList(log, logger, settings.revocationPollMs ?? 2_000);
  const accepted = await startAcceptedKeys(log, settings.acceptedKeyIds, logger, settings.revocationPollMs ?? 2_000);
  const deps: IngestDeps = {
    log,
    logger,
    acceptedKeyIds: accepted.keys,
    currentSealingKeyPem: accepted.currentPublicKeyPem,
    maxBatch: settings.maxBatch,
    scopes: agentScopesFromConfig(settings.agentScopes ?? {}),
    maxClockSkewMs: settings.maxClockSkewSeconds !== undefined ? settings.maxClockSkewSeconds * 1000 : DEFAULT_MAX_CLOCK_SKEW_MS,
    maxInFlightPerStream: settings.maxInFlightPerStream ?? 256,
    // Default: above what one DC produces (a helpdesk's bulk reset passes as a burst), and about
    // half of Graph's ~19 writes/s budget, so one flooding DC can never build a backlog in the
    // executor that others wait behind (ARCHITECTURE.md, Security model: the bound).
    rateLimiter: new AgentRateLimiter(settings.agentRateLimit ?? { perSecond: 10, burst: 100 }),
    revocations,
    denials: agentDenialRecorder(log, logger),
  };
  const running = await startGrpcServer({
    host: settings.host,
    port: settings.port,
    credentials: mtlsServerCredentials(settings.tls),
    maxReceiveMessageBytes: settings.maxMessageBytes,
    healthServiceNames: [AgentIngestService.typeName],
    register: (server) =>
      server.addService(
        toGrpcService(AgentIngestService),
        implement(AgentIngestService, { heartbeat: heartbeatHandler(deps), streamChanges: streamChangesHandler(deps) }, (err, method) =>
          logger.error({ err: (err as Error).message, method }, "handler failed"),
        ),
      ),
  });
  running.setServing(true);
  logger.info(
    { event: "ready", host: settings.host, port: running.port, acceptedKeyIds: settings.acceptedKeyIds, scopedAgents: Object.keys(settings.agentScopes ?? {}) },
    "ingest listening (mTLS)",
  );
  const shutdown = running.shutdown;
  return {
    ...running,
    shutdown: async (graceMs?: number) => {
      revocations.stop();
      accepted.stop();
      await shutdown(graceMs);
    },
  };
}
