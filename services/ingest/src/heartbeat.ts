import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { EventLog } from "@pwsync/eventlog";
import type { HeartbeatRequest } from "@pwsync/proto";

/** `domainController` comes from the agent's certificate; the message's own claim is ignored. */
export async function recordHeartbeat(log: EventLog, agentId: string, domainController: string, beat: HeartbeatRequest): Promise<void> {
  const row = {
    agent_id: agentId,
    domain_controller: domainController.slice(0, 255),
    agent_version: beat.agentVersion.slice(0, 64),
    filter_loaded: beat.filterLoaded,
    queue_depth: String(beat.queueDepth),
    oldest_queued_age_seconds: String(beat.oldestQueuedAgeSeconds),
    spool_depth: String(beat.spoolDepth),
    oldest_spooled_age_seconds: String(beat.oldestSpooledAgeSeconds),
    last_change_seen_at: beat.lastChangeSeenAt ? timestampDate(beat.lastChangeSeenAt) : null,
    last_heartbeat_at: new Date(),
    server_in_use: beat.serverInUse.slice(0, 32),
  };
  await log.db
    .insertInto("agent_status")
    .values(row)
    .onConflict((oc) => oc.column("agent_id").doUpdateSet(row))
    .execute();
}
