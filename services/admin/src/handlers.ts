import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import {
  changeStreamId,
  changeCountsByState,
  consumerGroupStatus,
  eventLogHead,
  getChangeSummary,
  listAgentStatus,
  listChanges,
  loadSealedSecret,
  readStream,
  type EventLog,
} from "@pwsync/eventlog";
import { MICROSOFT_GRAPH_BASE_URL, verifyCredentials, type GraphClient } from "@pwsync/graph";
import { GrpcError, type ServiceImpl } from "@pwsync/grpc";
import type { Logger } from "@pwsync/log";
import {
  AdminService,
  AgentInfoSchema,
  ChangeCountsSchema,
  ChangeState,
  ConsumerStatusSchema,
  GetChangeResponseSchema,
  GetStatusResponseSchema,
  ListAgentsResponseSchema,
  ListChangesResponseSchema,
  ListRevocationsResponseSchema,
  RetryChangeResponseSchema,
  RevocationSchema,
  ListSealingKeysResponseSchema,
  SealingKeyEpochSchema,
  SealingKeyState,
  RevokeAgentCertificateResponseSchema,
  SendTestAlertResponseSchema,
  TenantKind,
  VerifyGraphCredentialsResponseSchema,
  WatchdogAlertSchema,
} from "@pwsync/proto";
import type { DenialRecorder } from "./audit.js";
import { requireAdmin, type AdminIdentity } from "./authz.js";
import type { WatchdogSettings } from "./config.js";
import { decodePageToken, encodePageToken, stateName, toChangeSummary, toTimelineEvent } from "./mapping.js";
import { requestRetry } from "./retry.js";
import { listRevocations, revokeAgentCertificate } from "./revoke.js";
import { epochsFromEvents, epochState, SEALING_KEYS_STREAM } from "@pwsync/crypto";
import { countSealedSecretsByKey } from "@pwsync/eventlog";
import type { TestAlertSender } from "./test-alert.js";
import { activeAlerts } from "./watchdog.js";

export interface AdminDeps {
  log: EventLog;
  logger: Logger;
  denials: DenialRecorder;
  /** The client is made on first use (VerifyGraphCredentials): it loads MSAL and the Graph SDK. */
  graph?: { client: () => Promise<GraphClient>; baseUrl: string };
  testAlert?: TestAlertSender;
  watchdog: WatchdogSettings;
}

export function tenantKind(deps: Pick<AdminDeps, "graph">): TenantKind {
  if (!deps.graph) return TenantKind.NOT_CONFIGURED;
  return new URL(deps.graph.baseUrl).origin === new URL(MICROSOFT_GRAPH_BASE_URL).origin ? TenantKind.REAL : TenantKind.SANDBOX;
}

type Handlers = Omit<ServiceImpl<typeof AdminService>, "watchEvents">;

/** Every unary RPC, each behind the admin-role check. */
export function adminHandlers(deps: AdminDeps): Handlers {
  const guard =
    <R, Res>(name: string, handler: (request: R, admin: AdminIdentity) => Promise<Res>) =>
    async (request: R, call: Parameters<typeof requireAdmin>[0]): Promise<Res> =>
      handler(request, await requireAdmin(call, `/${AdminService.typeName}/${name}`, deps.denials));

  return {
    getStatus: guard("GetStatus", async () => {
      const [consumers, counts, head, agents, alerts] = await Promise.all([
        consumerGroupStatus(deps.log.db),
        changeCountsByState(deps.log.db),
        eventLogHead(deps.log.db),
        listAgentStatus(deps.log.db),
        activeAlerts(deps.log),
      ]);
      const liveSince = Date.now() - deps.watchdog.heartbeatMissedSeconds * 1000;
      const total = Object.values(counts).reduce((a, b) => a + b, 0);
      return create(GetStatusResponseSchema, {
        lastGlobalPosition: head.lastGlobalPosition,
        consumers: consumers.map((c) =>
          create(ConsumerStatusSchema, {
            group: c.group,
            lag: BigInt(c.lag),
            liveMembers: c.liveMembers,
            ...(c.checkpointUpdatedAt ? { checkpointUpdatedAt: timestampFromDate(c.checkpointUpdatedAt) } : {}),
          }),
        ),
        changes: create(ChangeCountsSchema, {
          total: BigInt(total),
          passwordSet: BigInt(counts.password_set),
          failed: BigInt(counts.failed),
          superseded: BigInt(counts.superseded),
          inFlight: BigInt(counts.captured + counts.resolved + counts.retrying + counts.retry_requested),
        }),
        sealedSecrets: BigInt(head.sealedSecrets),
        agentQueueDepth: BigInt(agents.reduce((sum, a) => sum + a.queueDepth, 0)),
        oldestAgentQueueAgeSeconds: BigInt(agents.reduce((max, a) => Math.max(max, a.oldestQueuedAgeSeconds), 0)),
        agentsTotal: agents.length,
        agentsLive: agents.filter((a) => a.lastHeartbeatAt.getTime() >= liveSince).length,
        tenant: tenantKind(deps),
        graphBaseUrl: deps.graph?.baseUrl ?? "",
        alerts: alerts.map((a) => create(WatchdogAlertSchema, { kind: a.kind, subject: a.subject, detail: a.detail, raisedAt: timestampFromDate(a.raisedAt) })),
        serverTime: timestampFromDate(new Date()),
      });
    }),

    listAgents: guard("ListAgents", async () => {
      const liveSince = Date.now() - deps.watchdog.heartbeatMissedSeconds * 1000;
      const agents = await listAgentStatus(deps.log.db);
      return create(ListAgentsResponseSchema, {
        agents: agents.map((a) =>
          create(AgentInfoSchema, {
            agentId: a.agentId,
            domainController: a.domainController,
            agentVersion: a.agentVersion,
            filterLoaded: a.filterLoaded,
            queueDepth: BigInt(a.queueDepth),
            oldestQueuedAgeSeconds: BigInt(a.oldestQueuedAgeSeconds),
            lastHeartbeatAt: timestampFromDate(a.lastHeartbeatAt),
            ...(a.lastChangeSeenAt ? { lastChangeSeenAt: timestampFromDate(a.lastChangeSeenAt) } : {}),
            ...(a.lastChangeCapturedAt ? { lastChangeCapturedAt: timestampFromDate(a.lastChangeCapturedAt) } : {}),
            serverInUse: a.serverInUse,
            live: a.lastHeartbeatAt.getTime() >= liveSince,
          }),
        ),
      });
    }),

    listChanges: guard("ListChanges", async (request) => {
      const pageSize = request.pageSize === 0 ? 50 : Math.min(request.pageSize, 500);
      const state = request.state === ChangeState.UNSPECIFIED ? undefined : stateName(request.state);
      if (request.state !== ChangeState.UNSPECIFIED && !state) throw new GrpcError(grpc.status.INVALID_ARGUMENT, `unknown state ${request.state}`);
      const rows = await listChanges(
        deps.log.db,
        {
          ...(request.account ? { account: request.account } : {}),
          ...(state ? { state } : {}),
          ...(request.since ? { since: timestampDate(request.since) } : {}),
          ...(request.until ? { until: timestampDate(request.until) } : {}),
          ...(request.agentId ? { agentId: request.agentId } : {}),
          ...(request.pageToken ? { beforeGlobalPosition: decodePageToken(request.pageToken)! } : {}),
        },
        pageSize + 1,
      );
      const page = rows.slice(0, pageSize);
      const more = rows.length > pageSize;
      return create(ListChangesResponseSchema, {
        changes: page.map(toChangeSummary),
        nextPageToken: more ? encodePageToken(BigInt(page.at(-1)!.global_position)) : "",
      });
    }),

    getChange: guard("GetChange", async (request) => {
      const changeId = request.changeId.toLowerCase();
      if (!/^[0-9a-f-]{36}$/.test(changeId)) throw new GrpcError(grpc.status.INVALID_ARGUMENT, "change_id must be a UUID");
      const [summary, events, secret] = await Promise.all([
        getChangeSummary(deps.log.db, changeId),
        readStream(deps.log.db, changeStreamId(changeId)),
        loadSealedSecret(deps.log.db, changeId),
      ]);
      if (!summary || events.length === 0) throw new GrpcError(grpc.status.NOT_FOUND, `no change ${request.changeId}`);
      return create(GetChangeResponseSchema, {
        summary: toChangeSummary(summary),
        events: events.map((event, i) => toTimelineEvent(event, events[i - 1], events[0])),
        totalMs: Number(summary.total_ms),
        workMs: Number(summary.work_ms),
        waitMs: Number(summary.wait_ms),
        secretPresent: secret !== undefined,
      });
    }),

    verifyGraphCredentials: guard("VerifyGraphCredentials", async () => {
      if (!deps.graph) throw new GrpcError(grpc.status.FAILED_PRECONDITION, "no graph section is configured for the admin service");
      const result = await verifyCredentials(await deps.graph.client());
      const common = { tenant: tenantKind(deps), graphBaseUrl: deps.graph.baseUrl };
      if (result.ok) return create(VerifyGraphCredentialsResponseSchema, { ok: true, tokenExpiresAt: timestampFromDate(result.tokenExpiresOn), ...common });
      return create(VerifyGraphCredentialsResponseSchema, {
        ok: false,
        failedStage: result.stage,
        httpStatus: result.error.httpStatus,
        graphErrorCode: result.error.code,
        detail: result.error.message,
        ...common,
      });
    }),

    sendTestAlert: guard("SendTestAlert", async (request, admin) => {
      if (!deps.testAlert) throw new GrpcError(grpc.status.FAILED_PRECONDITION, "no notifier section (SMTP relay) is configured for the admin service");
      const sent = await deps.testAlert.send(request.recipients, admin.name);
      deps.logger.info({ admin: admin.name, recipients: sent.recipients, messageId: sent.messageId }, "test alert sent");
      return create(SendTestAlertResponseSchema, { recipients: sent.recipients, smtpMessageId: sent.messageId });
    }),

    retryChange: guard("RetryChange", async (request, admin) => {
      const result = await requestRetry(deps.log, request.changeId, admin.name, request.reason);
      deps.logger.info({ admin: admin.name, changeId: request.changeId, globalPosition: String(result.globalPosition) }, "retry requested");
      return create(RetryChangeResponseSchema, { globalPosition: result.globalPosition, streamVersion: result.streamVersion });
    }),

    revokeAgentCertificate: guard("RevokeAgentCertificate", async (request, admin) => {
      const result = await revokeAgentCertificate(deps.log, request.certificateFingerprint, admin.name, request.reason);
      deps.logger.warn({ admin: admin.name, ...result }, "agent certificate revoked");
      return create(RevokeAgentCertificateResponseSchema, result);
    }),

    listSealingKeys: guard("ListSealingKeys", async () => {
      const [events, live] = await Promise.all([readStream(deps.log.db, SEALING_KEYS_STREAM), countSealedSecretsByKey(deps.log.db)]);
      const now = new Date();
      const STATE = {
        current: SealingKeyState.CURRENT,
        overlap: SealingKeyState.OVERLAP,
        retired: SealingKeyState.RETIRED,
        destroyed: SealingKeyState.DESTROYED,
      } as const;
      return create(ListSealingKeysResponseSchema, {
        keys: epochsFromEvents(events)
          .reverse()
          .map((e) =>
            create(SealingKeyEpochSchema, {
              epoch: e.epoch,
              keyId: e.keyId,
              state: STATE[epochState(e, now)],
              createdAt: timestampFromDate(e.createdAt),
              ...(e.acceptUntil ? { acceptUntil: timestampFromDate(e.acceptUntil) } : {}),
              ...(e.destroyedAt ? { destroyedAt: timestampFromDate(e.destroyedAt) } : {}),
              liveSecrets: BigInt(live.get(e.keyId) ?? 0),
            }),
          ),
      });
    }),

    listRevocations: guard("ListRevocations", async () =>
      create(ListRevocationsResponseSchema, { revocations: (await listRevocations(deps.log)).map((r) => create(RevocationSchema, r)) }),
    ),
  };
}
