import { sql, type Kysely } from "kysely";

// The event log's tables. events is append-only, enforced by the database itself, so no code
// path (or operator with the application's role) can rewrite the audit trail.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE streams (
      stream_id text PRIMARY KEY,
      version integer NOT NULL CHECK (version >= 0),
      created_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`
    CREATE TABLE events (
      global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
      stream_id text NOT NULL REFERENCES streams (stream_id),
      stream_version integer NOT NULL CHECK (stream_version >= 1),
      partition smallint NOT NULL,
      partition_key text NOT NULL,
      type text NOT NULL,
      data jsonb NOT NULL,
      metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
      created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
      UNIQUE (stream_id, stream_version)
    )`.execute(db);
  await sql`CREATE INDEX events_partition_order ON events (partition, transaction_id, global_position)`.execute(db);
  await sql`CREATE INDEX events_order ON events (transaction_id, global_position)`.execute(db);
  await sql`CREATE INDEX events_type_created ON events (type, created_at)`.execute(db);
  await sql`
    CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'events is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
    END $$`.execute(db);
  await sql`
    CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change()`.execute(db);
  await sql`
    CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change()`.execute(db);

  await sql`
    CREATE TABLE sealed_secrets (
      change_id uuid PRIMARY KEY,
      key_id text NOT NULL,
      envelope bytea NOT NULL,
      stored_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);

  await sql`
    CREATE TABLE consumer_checkpoints (
      group_name text NOT NULL,
      partition smallint NOT NULL,
      transaction_id xid8 NOT NULL DEFAULT '0'::xid8,
      global_position bigint NOT NULL DEFAULT 0,
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (group_name, partition)
    )`.execute(db);
  await sql`
    CREATE TABLE consumer_members (
      group_name text NOT NULL,
      member_id text NOT NULL,
      heartbeat_at timestamptz NOT NULL,
      PRIMARY KEY (group_name, member_id)
    )`.execute(db);

  await sql`
    CREATE TABLE executor_user_state (
      entra_user_id text PRIMARY KEY,
      change_id uuid NOT NULL,
      changed_at timestamptz NOT NULL
    )`.execute(db);
  await sql`
    CREATE TABLE notifier_throttle (
      recipient text PRIMARY KEY,
      window_started_at timestamptz NOT NULL,
      sent_in_window integer NOT NULL
    )`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error("the event log is never migrated down: restore from a backup instead");
}
