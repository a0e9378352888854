import { setTimeout as sleep } from "node:timers/promises";
import { readStream, shredSealedSecret, startProcessor, type AppendWrites, type EventLog, type Processor, type StoredEvent } from "@pwsync/eventlog";
import { classifyGraphError, findUsers, GraphBatcher, type GraphClient } from "@pwsync/graph";
import type { Logger } from "@pwsync/log";
import { decodeEvent, newEvent, ResolutionFailureReason } from "@pwsync/proto";
import { recordOutcome, tracedHandler } from "@pwsync/telemetry";
import type { LookupAttribute } from "./config.js";
import { decide, plannedLookups, type Lookup } from "./decide.js";

export interface ResolverDeps {
  log: EventLog;
  graph: GraphClient;
  /**
   * Sends lookups asked at about the same time as one Graph `$batch`; startResolver makes one
   * over `graph`. Absent (a handler called on its own): every lookup is a request of its own.
   */
  lookups?: GraphBatcher;
  logger: Logger;
  matchOrder: readonly LookupAttribute[];
  /**
   * Keep the sealed password when resolution fails, so an admin can retry the change
   * (AdminService.RetryChange) after fixing the cause; the reset-executor's secret reaper
   * shreds it when the retry window closes. Absent: shred at once.
   */
  retainSecretOnFailure?: boolean;
}

/** The partition key that makes one user's changes reach the reset-executor in order. */
export const userPartitionKey = (entraUserId: string) => `user-${entraUserId}`;

class RetryLater extends Error {}

async function lookUp(deps: ResolverDeps, changeId: string, by: LookupAttribute, value: string): Promise<Lookup | { graphFailure: string }> {
  try {
    return { by, value, found: deps.lookups ? await deps.lookups.findUsers(by, value) : await findUsers(deps.graph, by, value) };
  } catch (err) {
    const error = classifyGraphError(err);
    if (error.kind === "throttled" || error.kind === "transient" || error.kind === "auth" || error.kind === "forbidden") {
      // Graph unreachable, throttling or a credentials problem the admin can fix: nothing is
      // decided about the user, so the change waits and is looked up again.
      deps.logger.warn({ changeId, by, kind: error.kind, httpStatus: error.httpStatus, code: error.code }, "user lookup failed; will retry");
      if (error.retryAfterMs) await sleep(Math.min(error.retryAfterMs, 120_000));
      throw new RetryLater(`${error.kind}: HTTP ${error.httpStatus} ${error.code}`);
    }
    // Status and code only: Graph's message can echo the query.
    return { graphFailure: `Graph answered ${error.httpStatus} ${error.code} looking up ${by} '${value}'` };
  }
}

export async function handleChangeCaptured(deps: ResolverDeps, event: StoredEvent): Promise<AppendWrites | void> {
  const captured = decodeEvent("ChangeCaptured", event.data);
  const lookups: Lookup[] = [];
  for (const planned of plannedLookups(deps.matchOrder, captured)) {
    const result = await lookUp(deps, captured.changeId, planned.by, planned.value);
    if ("graphFailure" in result) return failure(deps, event, captured.changeId, ResolutionFailureReason.GRAPH_ERROR, result.graphFailure);
    lookups.push(result);
    if (result.found.length > 0) break;
  }
  const resolution = decide(captured.accountName, lookups, captured.scopeUpnSuffixes);
  if (resolution.kind === "failed") {
    deps.logger.warn(
      { changeId: captured.changeId, account: captured.accountName, reason: ResolutionFailureReason[resolution.reason], detail: resolution.detail },
      "user not resolved",
    );
    return failure(deps, event, captured.changeId, resolution.reason, resolution.detail);
  }
  deps.logger.info({ changeId: captured.changeId, account: captured.accountName, entraUserId: resolution.user.id }, "user resolved");
  return {
    appends: [
      {
        streamId: event.streamId,
        events: [
          {
            ...newEvent("UserResolved", {
              changeId: captured.changeId,
              entraUserId: resolution.user.id,
              entraUserPrincipalName: resolution.user.userPrincipalName,
              matchedBy: resolution.matchedBy,
              changedAt: captured.changedAt,
              // The executor's ordering key (reset-executor/src/ordering.ts) travels with the user.
              ...(captured.capturedAt ? { capturedAt: captured.capturedAt } : {}),
              captureSequence: captured.captureSequence,
              domainController: captured.domainController,
            }),
            metadata: { ...event.metadata, actor: "resolver" },
          },
        ],
        expectedVersion: event.streamVersion,
        partitionKey: userPartitionKey(resolution.user.id),
      },
    ],
    afterAppend: async (_trx, [appended]) => {
      if (!appended!.success) deps.logger.warn({ changeId: captured.changeId }, "change already resolved (redelivery); nothing appended");
    },
  };
}

function failure(deps: ResolverDeps, event: StoredEvent, changeId: string, reason: ResolutionFailureReason, detail: string): AppendWrites {
  const keep = deps.retainSecretOnFailure === true;
  recordOutcome("ResolutionFailed");
  return {
    appends: [
      {
        streamId: event.streamId,
        events: [
          { ...newEvent("ResolutionFailed", { changeId, reason, detail }), metadata: { ...event.metadata, actor: "resolver" } },
          // Terminal: the sealed password is destroyed in the same transaction, unless it is
          // kept for the retry window.
          ...(keep ? [] : [{ ...newEvent("SecretShredded", { changeId }), metadata: { ...event.metadata, actor: "resolver" } }]),
        ],
        expectedVersion: event.streamVersion,
      },
    ],
    afterAppend: async (trx, [appended]) => {
      if (appended!.success && !keep) await shredSealedSecret(trx, changeId);
    },
  };
}

const PIPELINE_AFTER_RETRY = new Set(["UserResolved", "ResolutionFailed", "SecretShredded", "RetryRequested"]);

/**
 * An admin's RetryRequested: the change is resolved afresh from its ChangeCaptured, appending
 * after the RetryRequested, so everything downstream happens as for a new capture.
 */
export async function handleRetryRequested(deps: ResolverDeps, event: StoredEvent): Promise<AppendWrites | void> {
  const stream = await readStream(deps.log.db, event.streamId);
  const captured = stream[0];
  const after = stream.filter((e) => e.streamVersion > event.streamVersion);
  if (captured?.type !== "ChangeCaptured" || after.some((e) => PIPELINE_AFTER_RETRY.has(e.type))) {
    // Already acted on (redelivery), or the change moved on (shredded, retried again).
    deps.logger.warn({ streamId: event.streamId }, "retry request already handled or superseded; ignored");
    return;
  }
  const request = decodeEvent("RetryRequested", event.data);
  deps.logger.info({ changeId: request.changeId, requestedBy: request.requestedBy }, "retrying a failed change");
  // Appends go after whatever followed the request (a late NotificationSent for the failure).
  return handleChangeCaptured(deps, { ...event, data: captured.data, streamVersion: stream.length });
}

export function startResolver(options: ResolverDeps): Promise<Processor> {
  const deps: ResolverDeps = { ...options, lookups: options.lookups ?? new GraphBatcher(options.graph) };
  return startProcessor(deps.log, {
    group: "resolver",
    eventTypes: ["ChangeCaptured", "RetryRequested"],
    // Lookups of different changes are independent; Graph latency, not CPU, bounds them.
    concurrency: 16,
    handle: tracedHandler("resolver", (event) => (event.type === "RetryRequested" ? handleRetryRequested(deps, event) : handleChangeCaptured(deps, event))),
    logger: deps.logger,
  });
}
