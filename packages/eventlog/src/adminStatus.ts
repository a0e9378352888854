import { sql, type Kysely, type Selectable } from "kysely";
import { consumerLag } from "./checkpoints.js";
import type { AgentStatusTable, ChangeStateName, Database } from "./schema.js";

export interface ConsumerGroupStatus {
  group: string;
  lag: number;
  liveMembers: number;
  checkpointUpdatedAt: Date | null;
}

/** Every consumer group that ever stored a checkpoint or registered a member. */
export async function consumerGroupStatus(db: Kysely<Database>, liveWithinSeconds = 5): Promise<ConsumerGroupStatus[]> {
  const groups = await sql<{ group_name: string; updated_at: Date | null; live: string }>`
    SELECT g.group_name,
           (SELECT max(updated_at) FROM consumer_checkpoints c WHERE c.group_name = g.group_name) AS updated_at,
           (SELECT count(*) FROM consumer_members m WHERE m.group_name = g.group_name AND m.heartbeat_at > now() - make_interval(secs => ${liveWithinSeconds})) AS live
      FROM (SELECT group_name FROM consumer_checkpoints UNION SELECT group_name FROM consumer_members) g
     ORDER BY g.group_name`.execute(db);
  return Promise.all(
    groups.rows.map(async (g) => ({
      group: g.group_name,
      lag: await consumerLag(db, g.group_name),
      liveMembers: Number(g.live),
      checkpointUpdatedAt: g.updated_at,
    })),
  );
}

/** Changes per state, from the counters the append keeps (migration 0010): constant time at any log size. */
export async function changeCountsByState(db: Kysely<Database>): Promise<Record<ChangeStateName, number>> {
  const result = await sql<Record<ChangeStateName, string | null>>`
    SELECT sum(captured) AS captured, sum(resolved) AS resolved, sum(retrying) AS retrying, sum(password_set) AS password_set,
           sum(failed) AS failed, sum(superseded) AS superseded, sum(retry_requested) AS retry_requested
      FROM change_state_counts`.execute(db);
  const row = result.rows[0];
  const counts: Record<ChangeStateName, number> = { captured: 0, resolved: 0, retrying: 0, password_set: 0, failed: 0, superseded: 0, retry_requested: 0 };
  for (const state of Object.keys(counts) as ChangeStateName[]) counts[state] = Number(row?.[state] ?? 0);
  return counts;
}

export async function eventLogHead(db: Kysely<Database>): Promise<{ lastGlobalPosition: bigint; sealedSecrets: number }> {
  const result = await sql<{ last: string | null; sealed: string }>`
    SELECT (SELECT max(global_position) FROM events) AS last, (SELECT count(*) FROM sealed_secrets) AS sealed`.execute(db);
  const row = result.rows[0];
  return { lastGlobalPosition: BigInt(row?.last ?? 0), sealedSecrets: Number(row?.sealed ?? 0) };
}

export interface AgentRow {
  agentId: string;
  domainController: string;
  agentVersion: string;
  filterLoaded: boolean;
  queueDepth: number;
  oldestQueuedAgeSeconds: number;
  /** Files in the filter's spool not drained yet, and the oldest one's age. */
  spoolDepth: number;
  oldestSpooledAgeSeconds: number;
  lastChangeSeenAt: Date | null;
  lastHeartbeatAt: Date;
  serverInUse: string;
  /** Last ChangeCaptured in the log from this agent. */
  lastChangeCapturedAt: Date | null;
}

export async function listAgentStatus(db: Kysely<Database>): Promise<AgentRow[]> {
  const result = await sql<Selectable<AgentStatusTable> & { last_captured: Date | null }>`
    SELECT a.*,
           (SELECT e.created_at FROM events e
             WHERE e.type = 'ChangeCaptured' AND coalesce(e.data->>'agentId', '') = a.agent_id
             ORDER BY e.created_at DESC LIMIT 1) AS last_captured
      FROM agent_status a ORDER BY a.agent_id`.execute(db);
  return result.rows.map((r) => ({
    agentId: r.agent_id,
    domainController: r.domain_controller,
    agentVersion: r.agent_version,
    filterLoaded: r.filter_loaded,
    queueDepth: Number(r.queue_depth),
    oldestQueuedAgeSeconds: Number(r.oldest_queued_age_seconds),
    spoolDepth: Number(r.spool_depth),
    oldestSpooledAgeSeconds: Number(r.oldest_spooled_age_seconds),
    lastChangeSeenAt: r.last_change_seen_at,
    lastHeartbeatAt: r.last_heartbeat_at,
    serverInUse: r.server_in_use,
    lastChangeCapturedAt: r.last_captured,
  }));
}

/**
 * Last ChangeCaptured per domain controller ever seen in the log (for "DC gone silent"). A skip
 * scan over the events_captured_dc index: one descent per distinct DC, however long the history.
 */
export async function lastCaptureByDomainController(db: Kysely<Database>): Promise<Map<string, Date>> {
  const result = await sql<{ dc: string; last: Date }>`
    WITH RECURSIVE dcs(dc) AS (
      (SELECT coalesce(data->>'domainController', '') FROM events WHERE type = 'ChangeCaptured' ORDER BY 1 LIMIT 1)
      UNION ALL
      SELECT (SELECT coalesce(e.data->>'domainController', '') FROM events e
               WHERE e.type = 'ChangeCaptured' AND coalesce(e.data->>'domainController', '') > dcs.dc
               ORDER BY 1 LIMIT 1)
        FROM dcs WHERE dcs.dc IS NOT NULL
    )
    SELECT dc,
           (SELECT e.created_at FROM events e
             WHERE e.type = 'ChangeCaptured' AND coalesce(e.data->>'domainController', '') = dcs.dc
             ORDER BY e.created_at DESC LIMIT 1) AS last
      FROM dcs WHERE dc IS NOT NULL AND dc <> ''`.execute(db);
  return new Map(result.rows.map((r) => [r.dc, r.last]));
}
