import { sql, type Kysely } from "kysely";

// The admin view spelled the lifecycle (which events are steps, which state each leaves, which
// are failures) and the change stream prefix out inline. They become two SQL functions, the
// SQL side of lifecycle.ts and streams.ts: lifecycle.int.test.ts checks that both say exactly
// what the TypeScript constants say, so a change there fails until a migration follows it.
// Written out here rather than generated from the constants: a migration must create the same
// schema tomorrow as today.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE FUNCTION change_state_after(event_type text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
      SELECT CASE event_type
        WHEN 'ChangeCaptured' THEN 'captured'
        WHEN 'UserResolved' THEN 'resolved'
        WHEN 'RetryScheduled' THEN 'retrying'
        WHEN 'PasswordSet' THEN 'password_set'
        WHEN 'ResetFailed' THEN 'failed'
        WHEN 'ResolutionFailed' THEN 'failed'
        WHEN 'Superseded' THEN 'superseded'
        WHEN 'RetryRequested' THEN 'retry_requested'
      END
    $$`.execute(db);
  // Every type change_state_after() knows, as an array the planner folds into a constant (so
  // the view's lookup still uses the (stream_id, type) index).
  await sql`
    CREATE FUNCTION change_step_types() RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
      SELECT ARRAY['ChangeCaptured', 'UserResolved', 'RetryScheduled', 'PasswordSet', 'ResetFailed', 'ResolutionFailed', 'Superseded', 'RetryRequested']
    $$`.execute(db);
  await sql`
    CREATE FUNCTION change_id_of_stream(stream_id text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
      SELECT CASE WHEN starts_with(stream_id, 'change-') THEN substr(stream_id, 8) END
    $$`.execute(db);
  // Same columns, same meaning as migration 0004's view.
  await sql`
    CREATE OR REPLACE VIEW change_summaries AS
    SELECT c.global_position,
           change_id_of_stream(c.stream_id) AS change_id,
           c.stream_id,
           coalesce(c.data->>'accountName', '') AS account_name,
           coalesce(c.data->>'userPrincipalName', '') AS user_principal_name,
           coalesce(c.data->>'mail', '') AS mail,
           coalesce(c.data->>'domainController', '') AS domain_controller,
           coalesce(c.data->>'agentId', '') AS agent_id,
           c.created_at AS captured_at,
           l.type AS last_event_type,
           l.created_at AS updated_at,
           change_state_after(l.type) AS state,
           CASE WHEN change_state_after(l.type) = 'failed' THEN coalesce(l.data->>'reason', '') ELSE '' END AS reason,
           CASE WHEN change_state_after(l.type) = 'failed' THEN coalesce(l.data->>'detail', '') ELSE '' END AS detail,
           coalesce(split_part(c.metadata->>'traceparent', '-', 2), '') AS trace_id,
           coalesce((l.data->'timing'->>'totalMs')::bigint, 0) AS total_ms,
           coalesce((l.data->'timing'->>'workMs')::bigint, 0) AS work_ms,
           coalesce((l.data->'timing'->>'waitMs')::bigint, 0) AS wait_ms
      FROM events c
      CROSS JOIN LATERAL (
        SELECT x.type, x.data, x.created_at
          FROM events x
         WHERE x.stream_id = c.stream_id
           AND x.type = ANY (change_step_types())
         ORDER BY x.stream_version DESC
         LIMIT 1
      ) l
     WHERE c.type = 'ChangeCaptured'`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error("the event log is never migrated down: restore from a backup instead");
}
