import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { createClient, isServiceError, mtlsChannelCredentials } from "@pwsync/grpc/client";
import { AgentIngestService, type HeartbeatResponse } from "@pwsync/proto";
import type { NamedEndpoint } from "./sender.js";

export interface HeartbeatFacts {
  agentVersion: string;
  filterLoaded: boolean;
  queueDepth: number;
  oldestQueuedAgeSeconds: number;
  /** The filter's spool, not drained yet (absent: verify's probe beat). */
  spoolDepth?: number;
  oldestSpooledAgeSeconds?: number;
  lastChangeSeenAt?: Date;
  domainController: string;
}

/** One Heartbeat call over mTLS; resolves with the server's clock or rejects with the gRPC error. */
export async function sendHeartbeat(endpoint: NamedEndpoint, facts: HeartbeatFacts, deadlineMs: number): Promise<HeartbeatResponse> {
  const options: grpc.ChannelOptions = endpoint.serverName ? { "grpc.ssl_target_name_override": endpoint.serverName } : {};
  const channel = new grpc.Client(endpoint.address, mtlsChannelCredentials({ ca: endpoint.caPem, cert: endpoint.certPem, key: endpoint.keyPem }), options);
  const ingest = createClient(AgentIngestService, channel);
  try {
    return await ingest.heartbeat(
      {
        agentVersion: facts.agentVersion,
        filterLoaded: facts.filterLoaded,
        queueDepth: BigInt(facts.queueDepth),
        oldestQueuedAgeSeconds: BigInt(Math.max(0, Math.floor(facts.oldestQueuedAgeSeconds))),
        spoolDepth: BigInt(facts.spoolDepth ?? 0),
        oldestSpooledAgeSeconds: BigInt(Math.max(0, Math.floor(facts.oldestSpooledAgeSeconds ?? 0))),
        ...(facts.lastChangeSeenAt ? { lastChangeSeenAt: timestampFromDate(facts.lastChangeSeenAt) } : {}),
        domainController: facts.domainController,
      },
      { deadline: Date.now() + deadlineMs },
    );
  } finally {
    channel.close();
  }
}

/** Primary first, then the secondary: the first server that answers gets the beat. */
export async function heartbeatAny(
  endpoints: NamedEndpoint[],
  facts: HeartbeatFacts,
  deadlineMs: number,
): Promise<{ role: string; response: HeartbeatResponse }> {
  const errors: string[] = [];
  for (const endpoint of endpoints) {
    try {
      return { role: endpoint.role, response: await sendHeartbeat(endpoint, facts, deadlineMs) };
    } catch (err) {
      errors.push(`${endpoint.role} ${endpoint.address}: ${isServiceError(err) ? err.details : (err as Error).message}`);
    }
  }
  throw new Error(`heartbeat failed on every server: ${errors.join("; ")}`);
}
