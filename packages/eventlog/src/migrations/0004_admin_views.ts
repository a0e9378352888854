import { sql, type Kysely } from "kysely";

// What the admin API, the watchdog and the Grafana audit view read: one row per change with its
// current state (a view, so SQL dashboards and the API agree on what "failed" means), the
// ingest server an agent uses, and an index for "what happened to Alice's change".
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE agent_status ADD COLUMN server_in_use text NOT NULL DEFAULT ''`.execute(db);
  await sql`CREATE INDEX events_captured_account ON events (lower(data->>'accountName')) WHERE type = 'ChangeCaptured'`.execute(db);
  await sql`CREATE INDEX events_stream_type ON events (stream_id, type)`.execute(db);
  await sql`
    CREATE VIEW change_summaries AS
    SELECT c.global_position,
           substr(c.stream_id, 8) AS change_id,
           c.stream_id,
           coalesce(c.data->>'accountName', '') AS account_name,
           coalesce(c.data->>'userPrincipalName', '') AS user_principal_name,
           coalesce(c.data->>'mail', '') AS mail,
           coalesce(c.data->>'domainController', '') AS domain_controller,
           coalesce(c.data->>'agentId', '') AS agent_id,
           c.created_at AS captured_at,
           l.type AS last_event_type,
           l.created_at AS updated_at,
           CASE l.type
             WHEN 'ChangeCaptured' THEN 'captured'
             WHEN 'UserResolved' THEN 'resolved'
             WHEN 'RetryScheduled' THEN 'retrying'
             WHEN 'PasswordSet' THEN 'password_set'
             WHEN 'ResetFailed' THEN 'failed'
             WHEN 'ResolutionFailed' THEN 'failed'
             WHEN 'Superseded' THEN 'superseded'
             WHEN 'RetryRequested' THEN 'retry_requested'
           END AS state,
           CASE WHEN l.type IN ('ResetFailed', 'ResolutionFailed') THEN coalesce(l.data->>'reason', '') ELSE '' END AS reason,
           CASE WHEN l.type IN ('ResetFailed', 'ResolutionFailed') THEN coalesce(l.data->>'detail', '') ELSE '' END AS detail,
           coalesce(split_part(c.metadata->>'traceparent', '-', 2), '') AS trace_id,
           coalesce((l.data->'timing'->>'totalMs')::bigint, 0) AS total_ms,
           coalesce((l.data->'timing'->>'workMs')::bigint, 0) AS work_ms,
           coalesce((l.data->'timing'->>'waitMs')::bigint, 0) AS wait_ms
      FROM events c
      CROSS JOIN LATERAL (
        SELECT x.type, x.data, x.created_at
          FROM events x
         WHERE x.stream_id = c.stream_id
           AND x.type IN ('ChangeCaptured', 'UserResolved', 'RetryScheduled', 'PasswordSet', 'ResetFailed', 'ResolutionFailed', 'Superseded', 'RetryRequested')
         ORDER BY x.stream_version DESC
         LIMIT 1
      ) l
     WHERE c.type = 'ChangeCaptured'`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error("the event log is never migrated down: restore from a backup instead");
}
