import { toJson, toJsonString, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { createClient, isServiceError, mtlsChannelCredentials, type Client } from "@pwsync/grpc";
import {
  AdminService,
  ChangeState,
  GetChangeResponseSchema,
  GetStatusResponseSchema,
  ListAgentsResponseSchema,
  ListChangesResponseSchema,
  ListRevocationsResponseSchema,
  ListSealingKeysResponseSchema,
  RetryChangeResponseSchema,
  RevokeAgentCertificateResponseSchema,
  SealingKeyState,
  SendTestAlertResponseSchema,
  TenantKind,
  VerifyGraphCredentialsResponseSchema,
  WatchEventsResponseSchema,
  type GetChangeResponse,
  type GetStatusResponse,
} from "@pwsync/proto";
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { ago, parseWhen, shortEnum, table, when } from "./cli-format.js";

const USAGE = `pwsync — the pwsync admin API for humans (same answers as grpcurl)

usage: pwsync <command> [options] [--json]

commands:
  status                         services, consumer lag, queues, tenant, watchdog alerts
  agents                         every agent: DC, version, filter, queue, last heartbeat
  changes [--account A] [--state failed|password_set|…] [--since 2h|ISO] [--until …]
          [--agent ID] [--limit N] [--page-token T]
  change <change-id>             one change: every event, step durations, trace id
  watch [--after POSITION] [--type T]… [--change ID]   tail the event log (Ctrl-C stops)
  verify-graph                   token + one read against Microsoft Graph
  test-alert [--to ADDRESS]…     send a test alert through the SMTP relay
  retry <change-id> [--reason TEXT]   retry a failed change (while its sealed password exists)
  revoke-agent <sha256-fingerprint> [--reason TEXT]
                                 revoke an agent certificate: ingest ends its open streams within
                                 seconds and refuses it from then on (openssl x509 -noout
                                 -fingerprint -sha256 -in agent.pem prints the fingerprint)
  revocations                    revoked agent certificates, newest first
  keys                           the reset-executor's sealing key epochs: current, overlap
                                 (still accepted), retired, destroyed; live secrets per key

connection (flags or environment):
  --addr   PWSYNC_ADMIN_ADDR  host:port of the admin API (default localhost:7444)
  --ca     PWSYNC_ADMIN_CA    CA certificate (PEM) that issued the server certificate
  --cert   PWSYNC_ADMIN_CERT  your admin client certificate (PEM)
  --key    PWSYNC_ADMIN_KEY   its private key (PEM)
`;

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
  /** Stops `watch` (tests); Ctrl-C otherwise. */
  signal?: AbortSignal;
}

const STATES = Object.keys(ChangeState).filter((k) => Number.isNaN(Number(k)) && k !== "UNSPECIFIED");

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
      addr: { type: "string" },
      ca: { type: "string" },
      cert: { type: "string" },
      key: { type: "string" },
      account: { type: "string" },
      state: { type: "string" },
      since: { type: "string" },
      until: { type: "string" },
      agent: { type: "string" },
      limit: { type: "string" },
      "page-token": { type: "string" },
      after: { type: "string" },
      type: { type: "string", multiple: true },
      change: { type: "string" },
      to: { type: "string", multiple: true },
      reason: { type: "string" },
    },
  });
  const [command, arg] = positionals;
  if (values.help || !command) {
    io.out(USAGE);
    return command || values.help ? 0 : 2;
  }
  const addr = values.addr ?? io.env.PWSYNC_ADMIN_ADDR ?? "localhost:7444";
  const ca = values.ca ?? io.env.PWSYNC_ADMIN_CA;
  const cert = values.cert ?? io.env.PWSYNC_ADMIN_CERT;
  const key = values.key ?? io.env.PWSYNC_ADMIN_KEY;
  if (!ca || !cert || !key) {
    io.err("pwsync: --ca, --cert and --key (or PWSYNC_ADMIN_CA / _CERT / _KEY) are required: the admin API only answers admin certificates\n");
    return 2;
  }
  const channel = new grpc.Client(addr, mtlsChannelCredentials({ ca: readFileSync(ca), cert: readFileSync(cert), key: readFileSync(key) }));
  const admin = createClient(AdminService, channel);
  const print = <S extends DescMessage>(schema: S, message: MessageShape<S>, human: () => string) =>
    io.out(values.json ? `${toJsonString(schema, message, { prettySpaces: 2 })}\n` : human());
  try {
    switch (command) {
      case "status": {
        const s = await admin.getStatus({});
        print(GetStatusResponseSchema, s, () => formatStatus(s));
        return s.alerts.length > 0 ? 1 : 0;
      }
      case "agents": {
        const a = await admin.listAgents({});
        print(ListAgentsResponseSchema, a, () =>
          table(
            ["AGENT", "DC", "VERSION", "FILTER", "QUEUE", "OLDEST", "SERVER", "LAST HEARTBEAT", "LAST CHANGE"],
            a.agents.map((x) => [
              x.agentId,
              x.domainController,
              x.agentVersion,
              x.filterLoaded ? "loaded" : "NOT LOADED",
              String(x.queueDepth),
              `${x.oldestQueuedAgeSeconds}s`,
              x.serverInUse || "-",
              `${ago(x.lastHeartbeatAt)}${x.live ? "" : " (SILENT)"}`,
              ago(x.lastChangeCapturedAt),
            ]),
          ),
        );
        return 0;
      }
      case "changes": {
        const state = values.state ? values.state.toUpperCase() : undefined;
        if (state && !STATES.includes(state)) throw new UsageError(`--state must be one of ${STATES.map((s) => s.toLowerCase()).join(", ")}`);
        const r = await admin.listChanges({
          account: values.account ?? "",
          state: state ? ChangeState[state as keyof typeof ChangeState] : ChangeState.UNSPECIFIED,
          agentId: values.agent ?? "",
          pageSize: values.limit ? Number(values.limit) : 50,
          pageToken: values["page-token"] ?? "",
          ...(values.since ? { since: timestampFromDate(parseWhen(values.since)) } : {}),
          ...(values.until ? { until: timestampFromDate(parseWhen(values.until)) } : {}),
        });
        print(
          ListChangesResponseSchema,
          r,
          () =>
            table(
              ["CAPTURED", "ACCOUNT", "STATE", "DC", "CHANGE", "DETAIL"],
              r.changes.map((c) => [when(c.capturedAt), c.accountName, shortEnum(ChangeState[c.state]), c.domainController, c.changeId, c.detail.slice(0, 80)]),
            ) + (r.nextPageToken ? `\nmore: --page-token ${r.nextPageToken}\n` : ""),
        );
        return 0;
      }
      case "change": {
        if (!arg) throw new UsageError("change needs a change id");
        const c = await admin.getChange({ changeId: arg });
        print(GetChangeResponseSchema, c, () => formatChange(c));
        return 0;
      }
      case "watch":
        return await watch(admin, values, io);
      case "verify-graph": {
        const v = await admin.verifyGraphCredentials({});
        print(VerifyGraphCredentialsResponseSchema, v, () =>
          v.ok
            ? `OK: token obtained and directory read (${shortEnum(TenantKind[v.tenant])} tenant, ${v.graphBaseUrl})\n`
            : `FAILED at ${v.failedStage}: ${v.httpStatus ? `HTTP ${v.httpStatus} ` : ""}${v.detail}\n`,
        );
        return v.ok ? 0 : 1;
      }
      case "test-alert": {
        const t = await admin.sendTestAlert({ recipients: values.to ?? [] });
        print(SendTestAlertResponseSchema, t, () => `test alert accepted by the relay for ${t.recipients.join(", ")} (${t.smtpMessageId})\n`);
        return 0;
      }
      case "retry": {
        if (!arg) throw new UsageError("retry needs a change id");
        const r = await admin.retryChange({ changeId: arg, reason: values.reason ?? "" });
        print(RetryChangeResponseSchema, r, () => `retry requested for ${arg} (event ${r.globalPosition}); follow it with: pwsync watch --change ${arg}\n`);
        return 0;
      }
      case "revoke-agent": {
        if (!arg) throw new UsageError("revoke-agent needs the certificate's SHA-256 fingerprint");
        const r = await admin.revokeAgentCertificate({ certificateFingerprint: arg, reason: values.reason ?? "" });
        print(RevokeAgentCertificateResponseSchema, r, () =>
          r.newlyRevoked
            ? `revoked ${r.certificateFingerprint}; ingest ends its streams within seconds\n`
            : `${r.certificateFingerprint} was already revoked\n`,
        );
        return 0;
      }
      case "keys": {
        const r = await admin.listSealingKeys({});
        print(ListSealingKeysResponseSchema, r, () =>
          table(
            ["EPOCH", "KEY ID", "STATE", "CREATED", "ACCEPTED UNTIL", "DESTROYED", "LIVE SECRETS"],
            r.keys.map((k) => [
              String(k.epoch),
              k.keyId,
              shortEnum(SealingKeyState[k.state]),
              when(k.createdAt),
              k.acceptUntil ? when(k.acceptUntil) : "-",
              k.destroyedAt ? when(k.destroyedAt) : "-",
              String(k.liveSecrets),
            ]),
          ),
        );
        return 0;
      }
      case "revocations": {
        const r = await admin.listRevocations({});
        print(ListRevocationsResponseSchema, r, () =>
          table(
            ["REVOKED", "BY", "FINGERPRINT (SHA-256)", "REASON"],
            r.revocations.map((x) => [when(x.revokedAt), x.revokedBy, x.certificateFingerprint, x.reason]),
          ),
        );
        return 0;
      }
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`pwsync: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    io.err(`pwsync: ${isServiceError(err) ? `${grpc.status[err.code]}: ${err.details}` : (err as Error).message}\n`);
    return 1;
  } finally {
    channel.close();
  }
}

class UsageError extends Error {}

function formatStatus(s: GetStatusResponse): string {
  const c = s.changes;
  const lines = [
    `tenant:        ${shortEnum(TenantKind[s.tenant])}${s.graphBaseUrl ? ` (${s.graphBaseUrl})` : ""}`,
    `event log:     position ${s.lastGlobalPosition}, ${s.sealedSecrets} sealed password(s) stored`,
    `changes:       ${c?.total ?? 0n} total, ${c?.passwordSet ?? 0n} set, ${c?.failed ?? 0n} failed, ${c?.superseded ?? 0n} superseded, ${c?.inFlight ?? 0n} in flight`,
    `agents:        ${s.agentsLive}/${s.agentsTotal} live, ${s.agentQueueDepth} queued on DCs (oldest ${s.oldestAgentQueueAgeSeconds}s)`,
    "",
    table(
      ["CONSUMER", "LAG", "REPLICAS", "CHECKPOINT MOVED"],
      s.consumers.map((x) => [x.group, String(x.lag), String(x.liveMembers), ago(x.checkpointUpdatedAt)]),
    ),
  ];
  if (s.alerts.length > 0)
    lines.push(
      table(
        ["ALERT", "SUBJECT", "SINCE", "DETAIL"],
        s.alerts.map((a) => [a.kind, a.subject, ago(a.raisedAt), a.detail]),
      ),
    );
  else lines.push("watchdog: no alerts\n");
  return lines.join("\n");
}

function formatChange(c: GetChangeResponse): string {
  const s = c.summary!;
  const header = [
    `change:   ${s.changeId}`,
    `account:  ${s.accountName} (${s.userPrincipalName || "-"}) on ${s.domainController || "-"} via ${s.agentId || "-"}`,
    `state:    ${shortEnum(ChangeState[s.state])}${s.detail ? ` — ${s.detail}` : ""}`,
    `trace:    ${s.traceId || "(none)"}`,
    `timing:   total ${c.totalMs} ms, work ${c.workMs} ms, wait ${c.waitMs} ms (Benchmark: Total/Work/Wait)`,
    `secret:   ${c.secretPresent ? "sealed password stored" : "shredded"}`,
    "",
  ].join("\n");
  return (
    header +
    "\n" +
    table(
      ["#", "AT", "+MS", "EVENT", "BY", "DATA"],
      c.events.map((e) => [String(e.streamVersion), when(e.createdAt), String(e.sincePreviousMs), e.type, e.actor, e.dataJson.slice(0, 100)]),
    )
  );
}

async function watch(
  admin: Client<typeof AdminService>,
  values: { after?: string; type?: string[]; change?: string; json?: boolean },
  io: CliIo,
): Promise<number> {
  const stop = new AbortController();
  const interrupt = () => stop.abort();
  io.signal?.addEventListener("abort", interrupt);
  process.once("SIGINT", interrupt);
  try {
    const request = { afterGlobalPosition: BigInt(values.after ?? 0), types: values.type ?? [], changeId: values.change ?? "" };
    for await (const m of admin.watchEvents(request, { signal: stop.signal })) {
      const e = m.event!;
      io.out(
        values.json
          ? `${JSON.stringify(toJson(WatchEventsResponseSchema, m))}\n`
          : `${when(e.createdAt)}  ${String(e.globalPosition).padStart(8)}  ${e.streamId}  ${e.type}  ${e.actor}\n`,
      );
    }
    return 0;
  } finally {
    process.removeListener("SIGINT", interrupt);
    io.signal?.removeEventListener("abort", interrupt);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  runCli(process.argv.slice(2), { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t), env: process.env }).then((code) =>
    process.exit(code),
  );
}
