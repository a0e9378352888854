import type { EventLog } from "@pwsync/eventlog";
import { implement, mtlsServerCredentials, startGrpcServer, toGrpcService, type RunningGrpcServer } from "@pwsync/grpc";
import type { Logger } from "@pwsync/log";
import { AgentIngestService } from "@pwsync/proto";
import type { IngestConfig } from "./config.js";
import { heartbeatHandler, streamChangesHandler } from "./service.js";

export async function startIngest(config: IngestConfig, log: EventLog, logger: Logger): Promise<RunningGrpcServer> {
  const deps = { log, logger, acceptedKeyIds: new Set(config.ingest.acceptedKeyIds), maxBatch: config.ingest.maxBatch };
  const running = await startGrpcServer({
    host: config.ingest.host,
    port: config.ingest.port,
    credentials: mtlsServerCredentials(config.ingest.tls),
    maxReceiveMessageBytes: config.ingest.maxMessageBytes,
    healthServiceNames: [AgentIngestService.typeName],
    register: (server) =>
      server.addService(
        toGrpcService(AgentIngestService),
        implement(AgentIngestService, { heartbeat: heartbeatHandler(deps) }, { streamChanges: streamChangesHandler(deps) as never }, (err, method) =>
          logger.error({ err: (err as Error).message, method }, "handler failed"),
        ),
      ),
  });
  running.setServing(true);
  logger.info({ host: config.ingest.host, port: running.port, acceptedKeyIds: config.ingest.acceptedKeyIds }, "ingest listening (mTLS)");
  return running;
}
