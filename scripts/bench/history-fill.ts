import { randomUUID } from "node:crypto";
import { PARTITION_COUNT, partitionOf } from "@pwsync/eventlog";
import type pg from "pg";

// Fills an event log (already migrated) with a year of a 50,000-user organisation, set-based
// inside Postgres: each chunk is one INSERT … SELECT of ~80,000 events, so the append trigger
// (change_states, change_state_counts) runs exactly as it does for the services' appends. What
// the application computes before appending (stream partitions: FNV-1a of the partition key) is
// computed here with the real partitionOf and handed over as arrays.
//
// Shape per change (share of changes): password set 88.3 % (4 events), set after a 429 retry
// 4.7 % (5), superseded 2 % (4), reset failed + admin mail sent or throttled 2 % (5), user not
// found + mail 1.5 % (4), not found then retried by an admin and set 0.5 % (7), refused at
// ingest 1 % (1). The newest 30 changes are still in flight with their sealed secret. Besides
// changes: watchdog alerts raised and cleared on 30 streams, refused admin calls, 10 agents'
// heartbeats, three consumer groups a few hundred events behind the head.

export const USERS = 50_000;
export const DOMAIN_CONTROLLERS = Array.from({ length: 10 }, (_, i) => `dc${String(i + 1).padStart(2, "0")}`);
export const CONSUMER_GROUPS = ["resolver", "reset-executor", "notifier"];
const EVENTS_PER_CHANGE = 4.05;
const CHANGES_PER_CHUNK = 20_000;
const IN_FLIGHT = 30;
const YEAR_MS = 365 * 24 * 3600 * 1000;

export interface FillOptions {
  events: number;
  /** Progress lines (chunk done, events so far, rate). */
  say?: (message: string) => void;
  /** The history ends here (default now), so "the last 24 hours" is the newest day of it. */
  endsAt?: Date;
}

export interface FillResult {
  events: number;
  changes: number;
  seconds: number;
}

export const accountOf = (user: number) => `user${String(user).padStart(5, "0")}`;

// One change's events, by kind (see the shares above); n is the change's number in the year.
const CHANGE_SQL = `
WITH spec AS (
  SELECT c.change_id::text AS change_id, 'change-' || c.change_id AS stream_id, c.part, n.n,
         (n.n * 7919) % 1000 AS r,
         (n.n * 104729) % ${USERS} AS u,
         'dc' || lpad((1 + (n.n * 31) % 10)::text, 2, '0') AS dc,
         to_timestamp(($5::float8 + n.n * $6::float8 / $4::float8) / 1000.0) AS t,
         '00-' || md5(c.change_id::text) || '-' || substr(md5(c.change_id::text || 's'), 1, 16) || '-01' AS tp
    FROM unnest($1::uuid[], $2::int2[]) WITH ORDINALITY AS c(change_id, part, k)
    CROSS JOIN LATERAL (SELECT $3::bigint + c.k - 1 AS n) n
), kinds AS (
  SELECT s.*, bu.entra_id, bu.partition AS user_partition,
         CASE
           WHEN s.n >= $4 - ${IN_FLIGHT} THEN (CASE s.n % 3 WHEN 0 THEN '{ChangeCaptured}' WHEN 1 THEN '{ChangeCaptured,UserResolved}'
                                                ELSE '{ChangeCaptured,UserResolved,RetryScheduled}' END)::text[]
           WHEN s.r < 47 THEN '{ChangeCaptured,UserResolved,RetryScheduled,PasswordSet,SecretShredded}'::text[]
           WHEN s.r < 930 THEN '{ChangeCaptured,UserResolved,PasswordSet,SecretShredded}'::text[]
           WHEN s.r < 950 THEN '{ChangeCaptured,UserResolved,Superseded,SecretShredded}'::text[]
           WHEN s.r < 960 THEN '{ChangeCaptured,UserResolved,ResetFailed,SecretShredded,NotificationSent}'::text[]
           WHEN s.r < 970 THEN '{ChangeCaptured,UserResolved,ResetFailed,SecretShredded,NotificationThrottled}'::text[]
           WHEN s.r < 985 THEN '{ChangeCaptured,ResolutionFailed,SecretShredded,NotificationSent}'::text[]
           WHEN s.r < 990 THEN '{ChangeCaptured,ResolutionFailed,NotificationSent,RetryRequested,UserResolved,PasswordSet,SecretShredded}'::text[]
           ELSE '{ChangeRefused}'::text[]
         END AS types
    FROM spec s JOIN bench_users bu ON bu.u = s.u
), streams_added AS (
  INSERT INTO streams (stream_id, version, created_at) SELECT stream_id, cardinality(types), t FROM kinds
  RETURNING 1
)
INSERT INTO events (stream_id, stream_version, partition, partition_key, type, data, metadata, created_at)
SELECT stream_id, v, partition, partition_key, type, data, metadata, created_at FROM (
  SELECT k.stream_id, e.v::int AS v,
         CASE WHEN e.type = 'UserResolved' THEN k.user_partition ELSE k.part END AS partition,
         CASE WHEN e.type = 'UserResolved' THEN 'user-' || k.entra_id ELSE k.stream_id END AS partition_key,
         e.type,
         CASE e.type
           WHEN 'ChangeCaptured' THEN jsonb_build_object(
             'changeId', k.change_id, 'agentId', k.dc, 'domainController', k.dc, 'accountName', 'user' || lpad(k.u::text, 5, '0'),
             'userPrincipalName', 'user' || lpad(k.u::text, 5, '0') || '@contoso.example', 'mail', 'user' || lpad(k.u::text, 5, '0') || '@contoso.example',
             'immutableId', encode(decode(md5('guid' || k.u), 'hex'), 'base64'), 'changedAt', k.t, 'receivedAt', k.t, 'keyId', 'k-2026',
             'agentSequence', k.n::text, 'capturedAt', k.t, 'captureSequence', k.n::text, 'scopeUpnSuffixes', jsonb_build_array('contoso.example'),
             'agentCertificateFingerprint', upper(md5(k.dc)))
           WHEN 'ChangeRefused' THEN jsonb_build_object(
             'changeId', k.change_id, 'agentId', k.dc, 'domainController', k.dc, 'accountName', 'svc' || k.u,
             'userPrincipalName', 'svc' || k.u || '@partner.example', 'reason', 'CHANGE_REFUSAL_REASON_OUT_OF_SCOPE',
             'detail', 'partner.example is outside the scope of agent ' || k.dc)
           WHEN 'UserResolved' THEN jsonb_build_object(
             'changeId', k.change_id, 'entraUserId', k.entra_id, 'entraUserPrincipalName', 'user' || lpad(k.u::text, 5, '0') || '@contoso.example',
             'matchedBy', 'MATCHED_BY_IMMUTABLE_ID', 'changedAt', k.t, 'capturedAt', k.t, 'captureSequence', k.n::text, 'domainController', k.dc)
           WHEN 'RetryScheduled' THEN jsonb_build_object(
             'changeId', k.change_id, 'attempt', 1, 'httpStatus', 429, 'graphErrorCode', 'TooManyRequests', 'delayMs', 2000, 'fromRetryAfter', true,
             'notBefore', k.t + interval '2.5 seconds')
           WHEN 'PasswordSet' THEN jsonb_build_object(
             'changeId', k.change_id, 'entraUserId', k.entra_id, 'attempts', CASE WHEN 'RetryScheduled' = ANY(k.types) THEN 2 ELSE 1 END,
             'timing', jsonb_build_object('totalMs', 600 + k.n % 400, 'workMs', 180 + k.n % 120, 'waitMs', CASE WHEN 'RetryScheduled' = ANY(k.types) THEN 2000 ELSE k.n % 50 END))
           WHEN 'Superseded' THEN jsonb_build_object('changeId', k.change_id, 'entraUserId', k.entra_id, 'supersededByChangeId', md5(k.change_id)::uuid)
           WHEN 'ResetFailed' THEN jsonb_build_object(
             'changeId', k.change_id, 'entraUserId', k.entra_id, 'reason', 'RESET_FAILURE_REASON_COMPLEXITY',
             'detail', 'The specified password does not comply with password complexity requirements', 'httpStatus', 400,
             'graphErrorCode', 'Request_BadRequest', 'attempts', 1, 'timing', jsonb_build_object('totalMs', 900, 'workMs', 240, 'waitMs', 20))
           WHEN 'ResolutionFailed' THEN jsonb_build_object(
             'changeId', k.change_id, 'reason', 'RESOLUTION_FAILURE_REASON_NOT_FOUND',
             'detail', 'no Entra ID user has onPremisesImmutableId, mail or userPrincipalName of account user' || lpad(k.u::text, 5, '0'))
           WHEN 'RetryRequested' THEN jsonb_build_object(
             'changeId', k.change_id, 'requestedBy', 'helpdesk-admin', 'reason', 'user now exists in Entra ID', 'retriedEventType', 'ResolutionFailed')
           WHEN 'SecretShredded' THEN jsonb_build_object('changeId', k.change_id)
           WHEN 'NotificationSent' THEN jsonb_build_object(
             'changeId', k.change_id, 'role', 'RECIPIENT_ROLE_ADMIN', 'recipient', 'helpdesk@contoso.example',
             'smtpMessageId', '<' || k.change_id || '@mail.contoso.example>', 'aboutEventType', k.types[2 + (k.types[2] = 'UserResolved')::int])
           WHEN 'NotificationThrottled' THEN jsonb_build_object(
             'changeId', k.change_id, 'role', 'RECIPIENT_ROLE_ADMIN', 'recipient', 'helpdesk@contoso.example',
             'throttledUntil', k.t + interval '10 minutes', 'aboutEventType', 'ResetFailed')
         END AS data,
         jsonb_build_object('traceparent', k.tp, 'agentId', k.dc,
           'actor', CASE WHEN e.type IN ('ChangeCaptured', 'ChangeRefused') THEN 'ingest'
                         WHEN e.type IN ('UserResolved', 'ResolutionFailed') THEN 'resolver'
                         WHEN e.type LIKE 'Notification%' THEN 'notifier'
                         WHEN e.type = 'RetryRequested' THEN 'helpdesk-admin'
                         ELSE 'reset-executor' END) AS metadata,
         k.t + (e.v - 1) * interval '180 milliseconds' + CASE WHEN e.v > 2 AND 'RetryScheduled' = ANY(k.types) THEN interval '2.5 seconds' ELSE interval '0' END
             + CASE WHEN e.v > 3 AND 'RetryRequested' = ANY(k.types) THEN interval '5 minutes' ELSE interval '0' END AS created_at
    FROM kinds k CROSS JOIN LATERAL unnest(k.types) WITH ORDINALITY AS e(type, v)
  UNION ALL
  SELECT o.stream_id, o.v, o.partition, o.stream_id, o.type, o.data, o.metadata, o.created_at
    FROM jsonb_to_recordset($7::jsonb) AS o(stream_id text, v int, partition int2, type text, data jsonb, metadata jsonb, created_at timestamptz)
) appended
ORDER BY created_at, stream_id, v`;

interface OtherEvent {
  stream_id: string;
  v: number;
  partition: number;
  type: string;
  data: unknown;
  metadata: unknown;
  created_at: string;
}

/** Watchdog alerts raised and cleared, and refused admin calls, at a realistic trickle. */
function otherEventsFor(fromMs: number, toMs: number, count: number, versions: Map<string, number>, seed: number): OtherEvent[] {
  const events: OtherEvent[] = [];
  for (let i = 0; i < count; i++) {
    const at = new Date(fromMs + ((toMs - fromMs) * (i + 0.5)) / count).toISOString();
    const pick = (seed + i) * 2654435761;
    if (i % 4 === 3) {
      const streamId = "admin-audit";
      const v = (versions.get(streamId) ?? 0) + 1;
      versions.set(streamId, v);
      events.push({
        stream_id: streamId,
        v,
        partition: partitionOf(streamId),
        type: "AdminAccessDenied",
        data: { method: "/pwsync.v1.AdminService/ListChanges", code: "PERMISSION_DENIED", subject: "intern", peer: "10.0.4.7:51234", detail: "not an admin" },
        metadata: { actor: "admin" },
        created_at: at,
      });
      continue;
    }
    const kind = ["agent_silent", "queue_aged", "dc_silent"][pick % 3]!;
    const dc = DOMAIN_CONTROLLERS[Math.floor(pick / 3) % DOMAIN_CONTROLLERS.length]!;
    const streamId = `watchdog-${kind}-${dc}`;
    const v = (versions.get(streamId) ?? 0) + 1;
    versions.set(streamId, v);
    const raised = v % 2 === 1;
    events.push({
      stream_id: streamId,
      v,
      partition: partitionOf(streamId),
      type: raised ? "WatchdogAlertRaised" : "WatchdogAlertCleared",
      data: raised ? { kind, subject: dc, detail: `${kind} on ${dc} (history fill)` } : { kind, subject: dc },
      metadata: { actor: "admin-watchdog" },
      created_at: at,
    });
  }
  return events;
}

/** Fills `client`'s database (migrated, empty) and leaves it analysed, as a year-old log would be. */
export async function fillHistory(client: pg.Client, options: FillOptions): Promise<FillResult> {
  const say = options.say ?? (() => {});
  const started = Date.now();
  const changes = Math.max(IN_FLIGHT + 1, Math.round(options.events / EVENTS_PER_CHANGE));
  const endMs = (options.endsAt ?? new Date()).getTime() - 60_000;
  const startMs = endMs - YEAR_MS;
  const users = Array.from({ length: USERS }, (_, u) => u);
  const entraIds = users.map(() => randomUUID());
  await client.query("CREATE TEMP TABLE bench_users (u int PRIMARY KEY, entra_id text NOT NULL, partition int2 NOT NULL)");
  await client.query("INSERT INTO bench_users SELECT * FROM unnest($1::int[], $2::text[], $3::int2[])", [
    users,
    entraIds,
    entraIds.map((id) => partitionOf(`user-${id}`)),
  ]);
  const versions = new Map<string, number>();
  const inFlight: string[] = [];
  let inserted = 0;
  let lastSay = 0;
  for (let first = 0; first < changes; first += CHANGES_PER_CHUNK) {
    const size = Math.min(CHANGES_PER_CHUNK, changes - first);
    const ids = Array.from({ length: size }, () => randomUUID());
    inFlight.push(...ids.filter((_, k) => first + k >= changes - IN_FLIGHT));
    const parts = ids.map((id) => partitionOf(`change-${id}`));
    const fromMs = startMs + (first * YEAR_MS) / changes;
    const toMs = startMs + ((first + size) * YEAR_MS) / changes;
    // One alert transition or denied call per ~5,000 events.
    const others = otherEventsFor(fromMs, toMs, Math.max(1, Math.round((size * EVENTS_PER_CHANGE) / 5000)), versions, first);
    const touched = new Map(others.map((o) => [o.stream_id, versions.get(o.stream_id)!]));
    for (const [streamId, version] of touched)
      await client.query("INSERT INTO streams (stream_id, version) VALUES ($1, $2) ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version", [
        streamId,
        version,
      ]);
    const result = await client.query(CHANGE_SQL, [ids, parts, first, changes, startMs, YEAR_MS, JSON.stringify(others)]);
    inserted += result.rowCount ?? 0;
    if (Date.now() - lastSay > 5000 || first + size >= changes) {
      lastSay = Date.now();
      const seconds = (Date.now() - started) / 1000;
      say(
        `history fill: ${inserted.toLocaleString("en")} events (${first + size}/${changes} changes) in ${seconds.toFixed(0)} s, ${Math.round(inserted / seconds)}/s`,
      );
    }
  }
  // The in-flight changes still hold their sealed password (random bytes here: no password exists).
  await client.query(
    `INSERT INTO sealed_secrets (change_id, key_id, envelope)
     SELECT id, 'k-2026', decode(md5(id::text) || md5(id::text || 'e'), 'hex') FROM unnest($1::uuid[]) AS id`,
    [inFlight],
  );
  const now = Date.now();
  for (const [i, dc] of DOMAIN_CONTROLLERS.entries()) {
    // dc10's agent went quiet two hours ago: the watchdog has something to say.
    const heartbeat = new Date(i === 9 ? now - 2 * 3600_000 : now - 5_000);
    await client.query(
      `INSERT INTO agent_status (agent_id, domain_controller, agent_version, filter_loaded, queue_depth, oldest_queued_age_seconds,
                                 last_change_seen_at, last_heartbeat_at, server_in_use)
       VALUES ($1, $1, '1.4.0', true, $2, $3, $4, $4, 'primary')`,
      [dc, i % 3, i % 3 ? 2 : 0, heartbeat],
    );
  }
  // Every consumer group a few hundred events behind the head of each partition.
  for (const group of CONSUMER_GROUPS)
    await client.query(
      `INSERT INTO consumer_checkpoints (group_name, partition, transaction_id, global_position)
       SELECT $1, p, c.transaction_id, c.global_position
         FROM generate_series(0, ${PARTITION_COUNT - 1}) p
         CROSS JOIN LATERAL (SELECT transaction_id, global_position FROM events WHERE partition = p
                              ORDER BY transaction_id DESC, global_position DESC OFFSET 300 LIMIT 1) c`,
      [group],
    );
  for (const group of CONSUMER_GROUPS)
    await client.query("INSERT INTO consumer_members (group_name, member_id, heartbeat_at) VALUES ($1, 'bench-1', now())", [group]);
  say("history fill: VACUUM ANALYZE (what autovacuum has long done to a year-old log)");
  await client.query("VACUUM ANALYZE");
  return { events: inserted, changes, seconds: (Date.now() - started) / 1000 };
}
