import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  appendToStream,
  changeIdOfStream,
  describeConflict,
  FAILED_OUTCOME_TYPES,
  isFailedOutcome,
  readStream,
  startProcessor,
  type EventLog,
  type NewEvent,
  type Processor,
  type StoredEvent,
  type Writes,
} from "@pwsync/eventlog";
import type { Logger } from "@pwsync/log";
import { decodeEvent, decodeRegistered, newEvent, RecipientRole, type EventTypeName } from "@pwsync/proto";
import { describeSmtpError, isPermanentSmtpError, render, type Mailer, type Templates } from "@pwsync/alert-mail";
import type { NotifierConfig } from "./config.js";
import { decide, outcomeKey, type Decision, type Role } from "./decide.js";
import { alertFacts, type TerminalFailure } from "./facts.js";
import { loadThrottleWindows, releaseSlot, reserveSlot } from "./throttle-store.js";
import { recordAlert, tracedHandler } from "@pwsync/telemetry";

export const NOTIFIER_GROUP = "notifier";
// Every failed outcome of a change, and nothing else, is worth an alert.
export const NOTIFIED_EVENT_TYPES = FAILED_OUTCOME_TYPES;
const NOTIFICATION_OUTCOME_TYPES = ["NotificationSent", "NotificationThrottled", "NotificationFailed"] as const satisfies readonly EventTypeName[];
type NotificationOutcome = (typeof NOTIFICATION_OUTCOME_TYPES)[number];
const isNotificationOutcome = (type: string): type is NotificationOutcome => (NOTIFICATION_OUTCOME_TYPES as readonly string[]).includes(type);

type Outcome =
  | { kind: "sent"; role: Role; recipient: string; messageId: string }
  | { kind: "throttled"; role: Role; recipient: string; throttledUntil: Date }
  | { kind: "failed"; role: Role; recipient: string; detail: string };

/** What one event's earlier attempts achieved, so a retry after a relay outage resends nothing. */
interface Pending {
  outcomes: Map<string, Outcome>;
  failedAttempts: number;
  firstSeen: number;
}

const PENDING_TTL_MS = 60 * 60_000;

export interface NotifierDeps {
  log: EventLog;
  config: NotifierConfig;
  templates: Templates;
  mailer: Mailer;
  logger: Logger;
  clock?: () => Date;
}

export class SmtpUnavailable extends Error {}

function parseFailure(event: StoredEvent): TerminalFailure {
  if (isFailedOutcome(event.type)) return decodeRegistered(event.type, event.data);
  throw new Error(`notifier cannot handle ${event.type} (stream ${event.streamId}, version ${event.streamVersion})`);
}

function roleOf(role: RecipientRole): Role | undefined {
  if (role === RecipientRole.ADMIN) return "admin";
  if (role === RecipientRole.END_USER) return "endUser";
  return undefined;
}

/** Outcome keys already in the stream (NotificationSent/Throttled/Failed). */
export function recordedOutcomes(stream: readonly StoredEvent[]): Set<string> {
  const keys = new Set<string>();
  for (const e of stream) {
    if (!isNotificationOutcome(e.type)) continue;
    const payload = decodeEvent(e.type, e.data);
    const role = roleOf(payload.role);
    if (role) keys.add(outcomeKey(payload.aboutEventType, role, payload.recipient));
  }
  return keys;
}

function toEvent(outcome: Outcome, changeId: string, aboutEventType: string, cause: StoredEvent): NewEvent {
  const role = outcome.role === "admin" ? RecipientRole.ADMIN : RecipientRole.END_USER;
  const common = { changeId, role, recipient: outcome.recipient, aboutEventType };
  const metadata = {
    ...(cause.metadata.traceparent ? { traceparent: cause.metadata.traceparent } : {}),
    ...(cause.metadata.tracestate ? { tracestate: cause.metadata.tracestate } : {}),
    actor: NOTIFIER_GROUP,
    causationStreamVersion: cause.streamVersion,
  };
  switch (outcome.kind) {
    case "sent":
      return { ...newEvent("NotificationSent", { ...common, smtpMessageId: outcome.messageId }), metadata };
    case "throttled":
      return { ...newEvent("NotificationThrottled", { ...common, throttledUntil: timestampFromDate(outcome.throttledUntil) }), metadata };
    case "failed":
      return { ...newEvent("NotificationFailed", { ...common, detail: outcome.detail }), metadata };
  }
}

/**
 * The notifier's event handler. Emails are the side effect; the outcome events and the throttle
 * counts are the writes, committed with the checkpoint. A relay that is down makes the handler
 * throw (the processor retries with backoff) until smtp.maxAttempts, then NotificationFailed.
 */
export function createNotificationHandler(deps: NotifierDeps): (event: StoredEvent) => Promise<Writes | void> {
  const { log, config, templates, mailer, logger } = deps;
  const clock = deps.clock ?? (() => new Date());
  const pendingByEvent = new Map<string, Pending>();

  return async function handle(event) {
    const now = clock();
    for (const [key, pending] of pendingByEvent) if (now.getTime() - pending.firstSeen > PENDING_TTL_MS) pendingByEvent.delete(key);

    const failure = parseFailure(event);
    const changeId = failure.payload.changeId || (changeIdOfStream(event.streamId) ?? "");
    const stream = await readStream(log.db, event.streamId);
    const captured = stream.find((e) => e.type === "ChangeCaptured");
    const change = captured ? decodeEvent("ChangeCaptured", captured.data) : undefined;
    if (!change) logger.warn({ changeId, streamId: event.streamId }, "no ChangeCaptured in the change's stream; alerting without account details");

    const endUser = change ? { mail: change.mail, userPrincipalName: change.userPrincipalName } : undefined;
    const addresses = [...config.adminRecipients, endUser?.mail.toLowerCase() ?? "", endUser?.userPrincipalName.toLowerCase() ?? ""].filter(Boolean);
    const decisions = decide(config, {
      aboutEventType: event.type,
      endUser,
      alreadyRecorded: recordedOutcomes(stream),
      throttle: await loadThrottleWindows(log.db, addresses),
      now,
    });
    if (decisions.length === 0) return;

    const eventKey = `${event.streamId}@${event.streamVersion}`;
    const pending = pendingByEvent.get(eventKey) ?? { outcomes: new Map<string, Outcome>(), failedAttempts: 0, firstSeen: now.getTime() };
    pendingByEvent.set(eventKey, pending);
    const facts = alertFacts(failure, change, event.createdAt);
    const unsent: Extract<Decision, { kind: "send" }>[] = [];
    let relayError: unknown;

    for (const decision of decisions) {
      const recipient = decision.kind === "noAddress" ? "" : decision.recipient;
      const key = outcomeKey(event.type, decision.role, recipient);
      if (pending.outcomes.has(key)) continue;
      if (decision.kind === "noAddress") {
        pending.outcomes.set(key, { kind: "failed", role: decision.role, recipient, detail: `no alert sent: ${decision.reason}` });
      } else if (decision.kind === "throttle") {
        pending.outcomes.set(key, { kind: "throttled", role: decision.role, recipient, throttledUntil: decision.throttledUntil });
      } else if (relayError) {
        unsent.push(decision);
      } else {
        const throttledUntil = await reserveSlot(log.db, recipient, now, config.throttle.windowMinutes, config.throttle.maxPerWindow);
        if (throttledUntil) {
          pending.outcomes.set(key, { kind: "throttled", role: decision.role, recipient, throttledUntil });
          continue;
        }
        try {
          const { messageId } = await mailer.send(recipient, render(templates, decision.role, facts), changeId);
          pending.outcomes.set(key, { kind: "sent", role: decision.role, recipient, messageId });
        } catch (err) {
          if (isPermanentSmtpError(err)) {
            pending.outcomes.set(key, {
              kind: "failed",
              role: decision.role,
              recipient,
              detail: `the SMTP relay refused the message: ${describeSmtpError(err)}`,
            });
          } else {
            await releaseSlot(log.db, recipient);
            relayError = err;
            unsent.push(decision);
          }
        }
      }
    }

    if (relayError) {
      pending.failedAttempts++;
      const detail = describeSmtpError(relayError);
      if (pending.failedAttempts < config.smtp.maxAttempts) {
        throw new SmtpUnavailable(
          `SMTP relay ${config.smtp.host}:${config.smtp.port} unavailable (attempt ${pending.failedAttempts} of ${config.smtp.maxAttempts}) for change ${changeId}: ${detail}`,
        );
      }
      for (const d of unsent) {
        pending.outcomes.set(outcomeKey(event.type, d.role, d.recipient), {
          kind: "failed",
          role: d.role,
          recipient: d.recipient,
          detail: `gave up after ${pending.failedAttempts} attempts; the SMTP relay ${config.smtp.host}:${config.smtp.port} was unavailable: ${detail}`,
        });
      }
    }

    const outcomes = [...pending.outcomes.values()];
    return async (trx) => {
      for (let attempt = 1; ; attempt++) {
        const current = await readStream(trx, event.streamId);
        const recorded = recordedOutcomes(current);
        const fresh = outcomes.filter((o) => !recorded.has(outcomeKey(event.type, o.role, o.recipient)));
        if (fresh.length === 0) return;
        const result = await appendToStream(
          trx,
          event.streamId,
          fresh.map((o) => toEvent(o, changeId, event.type, event)),
          { expectedVersion: current.at(-1)?.streamVersion ?? 0, partitionKey: event.partitionKey },
        );
        if (result.success) {
          for (const o of fresh) {
            logger.info(
              { changeId, about: event.type, role: o.role, recipient: o.recipient, outcome: o.kind, ...(o.kind === "failed" ? { detail: o.detail } : {}) },
              `notification ${o.kind}`,
            );
            recordAlert(o.kind, String(o.role));
          }
          return;
        }
        // Another writer (the executor shredding the secret) appended meanwhile: re-read and retry.
        if (attempt >= 5) throw new Error(`cannot record notification outcomes: ${describeConflict(result)}`);
      }
    };
  };
}

export function startNotificationProcessor(deps: NotifierDeps, options: { memberId?: string; pollIntervalMs?: number } = {}): Promise<Processor> {
  return startProcessor(deps.log, {
    group: NOTIFIER_GROUP,
    eventTypes: NOTIFIED_EVENT_TYPES,
    handle: tracedHandler("notifier", createNotificationHandler(deps)),
    logger: deps.logger,
    ...options,
  });
}
