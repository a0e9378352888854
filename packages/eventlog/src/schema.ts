import type { ColumnType, Generated } from "kysely";
import type { ChangeStateName } from "./lifecycle.js";

// Row types of every table. Only this package writes SQL against `events` and `streams`.
export interface EventsTable {
  global_position: Generated<string>;
  transaction_id: Generated<string>;
  stream_id: string;
  stream_version: number;
  partition: number;
  partition_key: string;
  type: string;
  data: ColumnType<unknown, string, never>;
  metadata: ColumnType<EventMetadata, string, never>;
  created_at: Generated<Date>;
}

export interface StreamsTable {
  stream_id: string;
  version: number;
  created_at: Generated<Date>;
}

export interface SealedSecretsTable {
  change_id: string;
  key_id: string;
  envelope: Buffer;
  stored_at: Generated<Date>;
}

export interface ConsumerCheckpointsTable {
  group_name: string;
  partition: number;
  transaction_id: string;
  global_position: string;
  updated_at: Generated<Date>;
  /** Fencing token: raised each time a member takes the partition (migration 0006). */
  fence: Generated<string>;
}

/** A Graph password write that may still be in flight until `expires_at` (migration 0006). */
export interface GraphWriteAttemptsTable {
  attempt_id: string;
  entra_user_id: string;
  change_id: string;
  expires_at: Date;
}

export interface ConsumerMembersTable {
  group_name: string;
  member_id: string;
  heartbeat_at: Date;
}

/** The reset-executor's per-user ordering state (newest change wins). */
export interface ExecutorUserStateTable {
  entra_user_id: string;
  change_id: string;
  changed_at: Date;
  /** reset-executor's ordering key (services/reset-executor/src/ordering.ts); NULL on rows from before 0005. */
  order_key: Buffer | null;
}

/** The notifier's per-recipient throttle windows. */
export interface NotifierThrottleTable {
  recipient: string;
  window_started_at: Date;
  sent_in_window: number;
}

export interface AgentStatusTable {
  agent_id: string;
  domain_controller: string;
  agent_version: string;
  filter_loaded: boolean;
  queue_depth: string;
  oldest_queued_age_seconds: string;
  last_change_seen_at: Date | null;
  last_heartbeat_at: Date;
  server_in_use: Generated<string>;
  /** The filter's spool on that DC (migration 0008). */
  spool_depth: Generated<string>;
  oldest_spooled_age_seconds: Generated<string>;
}

/** One row per change with its current state (view defined in migration 0004). */
export interface ChangeSummariesView {
  global_position: string;
  change_id: string;
  stream_id: string;
  account_name: string;
  user_principal_name: string;
  mail: string;
  domain_controller: string;
  agent_id: string;
  captured_at: Date;
  last_event_type: string;
  updated_at: Date;
  state: ChangeStateName;
  reason: string;
  detail: string;
  trace_id: string;
  total_ms: string;
  work_ms: string;
  wait_ms: string;
}

export type { ChangeStateName };

/** Each change's current state, kept by the append trigger (migration 0010); read through change_summaries. */
export interface ChangeStatesTable {
  stream_id: string;
  /** The change's ChangeCaptured event. */
  global_position: string;
  last_version: number;
  last_event_type: string;
  state: ChangeStateName;
  updated_at: Date;
  reason: string;
  detail: string;
  total_ms: string;
  work_ms: string;
  wait_ms: string;
}

/** Changes per state, one row per slot (migration 0010); the totals are the sums over slots. */
export interface ChangeStateCountsTable {
  slot: number;
  captured: string;
  resolved: string;
  retrying: string;
  password_set: string;
  failed: string;
  superseded: string;
  retry_requested: string;
}

export interface Database {
  agent_status: AgentStatusTable;
  change_summaries: ChangeSummariesView;
  change_states: ChangeStatesTable;
  change_state_counts: ChangeStateCountsTable;
  events: EventsTable;
  streams: StreamsTable;
  sealed_secrets: SealedSecretsTable;
  consumer_checkpoints: ConsumerCheckpointsTable;
  consumer_members: ConsumerMembersTable;
  graph_write_attempts: GraphWriteAttemptsTable;
  executor_user_state: ExecutorUserStateTable;
  notifier_throttle: NotifierThrottleTable;
}

/** Carried by every event: the change's W3C trace context and who caused the event. */
export interface EventMetadata {
  traceparent?: string;
  tracestate?: string;
  /** Service (or admin identity) that appended the event. */
  actor?: string;
  /** Agent id (client certificate CN) for events caused by an agent. */
  agentId?: string;
  [key: string]: unknown;
}
