import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { create, fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { afterEach, describe, expect, it } from "vitest";
import { appendToStream, openEventLog, readStream, storeSealedSecret, type EventLog, type StoredEvent } from "@pwsync/eventlog";
import { createLogger } from "@pwsync/log";
import { events, RecipientRole, ResetFailureReason, ResolutionFailureReason } from "@pwsync/proto";
import { readEml, startSmtpCatcher, type SmtpCatcher } from "@pwsync/smtp-catcher";
import { createTestDatabase, eventually, freePort } from "@pwsync/testkit";
import { notifierConfigSchema, type NotifierConfig } from "./config.js";
import { startNotifier, type RunningNotifier } from "./notifier.js";

const ADMIN = "helpdesk@corp.example";
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Harness {
  eventLog: EventLog;
  mailDir: string;
  logLines: string[];
  catcher?: SmtpCatcher;
  notifier?: RunningNotifier;
}

async function harness(): Promise<Harness> {
  const eventLog = await openEventLog(await createTestDatabase("notifier"));
  cleanups.push(() => eventLog.close());
  const mailDir = mkdtempSync(path.join(tmpdir(), "notifier-mail-"));
  cleanups.push(() => rmSync(mailDir, { recursive: true, force: true }));
  return { eventLog, mailDir, logLines: [] };
}

async function startCatcher(h: Harness, port = 0, auth?: { user: string; pass: string }): Promise<SmtpCatcher> {
  const catcher = await startSmtpCatcher({ port, dir: h.mailDir, ...(auth ? { auth } : {}) });
  cleanups.push(() => catcher.close());
  h.catcher = catcher;
  return catcher;
}

function configFor(h: Harness, smtpPort: number, overrides: Record<string, unknown> = {}): NotifierConfig {
  const { smtp, ...rest } = overrides as { smtp?: Record<string, unknown> };
  return notifierConfigSchema.parse({
    database: { url: h.eventLog.connectionString },
    smtp: { host: "127.0.0.1", port: smtpPort, startTls: "off", from: "pwsync@corp.example", timeoutMs: 2000, ...smtp },
    adminRecipients: [ADMIN],
    notifyAdmins: true,
    notifyEndUser: true,
    throttle: { maxPerWindow: 5, windowMinutes: 60 },
    health: { host: "127.0.0.1", port: 0 },
    ...rest,
  });
}

async function runNotifier(h: Harness, config: NotifierConfig): Promise<RunningNotifier> {
  const logger = createLogger({ service: "notifier", level: "info", destination: { write: (line: string) => void h.logLines.push(line) } });
  const notifier = await startNotifier(config, { logger, eventLog: h.eventLog, pollIntervalMs: 50 });
  cleanups.push(() => notifier.stop());
  h.notifier = notifier;
  return notifier;
}

interface Change {
  changeId: string;
  streamId: string;
}

async function captureChange(h: Harness, account = "jdoe", mail = "john.doe@corp.example"): Promise<Change> {
  const changeId = randomUUID();
  const streamId = `change-${changeId}`;
  const captured = create(events.ChangeCaptured, {
    changeId,
    agentId: "dc01-agent",
    domainController: "DC01.corp.example",
    accountName: account,
    userPrincipalName: `${account}@corp.example`,
    mail,
    changedAt: timestampFromDate(new Date()),
    receivedAt: timestampFromDate(new Date()),
    keyId: "executor-2025",
    agentSequence: 1n,
  });
  const result = await appendToStream(h.eventLog.db, streamId, [{ type: "ChangeCaptured", data: toJson(events.ChangeCaptured, captured) }], {
    expectedVersion: "no_stream",
  });
  expect(result.success).toBe(true);
  return { changeId, streamId };
}

async function failReset(h: Harness, change: Change): Promise<void> {
  const failed = create(events.ResetFailed, {
    changeId: change.changeId,
    entraUserId: randomUUID(),
    reason: ResetFailureReason.COMPLEXITY,
    detail: "Microsoft Graph: The specified password does not comply with password complexity requirements.",
    httpStatus: 400,
    graphErrorCode: "Request_BadRequest",
    attempts: 1,
  });
  const stream = await readStream(h.eventLog.db, change.streamId);
  const result = await appendToStream(
    h.eventLog.db,
    change.streamId,
    [{ type: "ResetFailed", data: toJson(events.ResetFailed, failed), metadata: { actor: "reset-executor" } }],
    {
      expectedVersion: stream.length,
    },
  );
  expect(result.success).toBe(true);
}

const OUTCOMES = ["NotificationSent", "NotificationThrottled", "NotificationFailed"] as const;
type OutcomeType = (typeof OUTCOMES)[number];

async function outcomes(h: Harness, change: Change): Promise<{ type: OutcomeType; role: RecipientRole; recipient: string; event: StoredEvent }[]> {
  const stream = await readStream(h.eventLog.db, change.streamId);
  return stream
    .filter((e): e is StoredEvent & { type: OutcomeType } => (OUTCOMES as readonly string[]).includes(e.type))
    .map((e) => {
      const payload = fromJson(events[e.type], e.data as JsonValue);
      return { type: e.type, role: payload.role, recipient: payload.recipient, event: e };
    });
}

function awaitOutcomes(h: Harness, change: Change, count: number) {
  return eventually(`${count} notification outcome(s) in ${change.streamId}`, async () => {
    const found = await outcomes(h, change);
    return found.length >= count ? found : undefined;
  });
}

function mails(h: Harness) {
  return readdirSync(h.mailDir)
    .filter((f) => f.endsWith(".eml"))
    .sort()
    .map((f) => ({ raw: readFileSync(path.join(h.mailDir, f), "utf8"), ...readEml(path.join(h.mailDir, f)) }));
}

describe("notifier", () => {
  it("emails the admin and the end user once about a complexity failure and records NotificationSent", async () => {
    const h = await harness();
    const catcher = await startCatcher(h);
    await runNotifier(h, configFor(h, catcher.port));
    const change = await captureChange(h);
    await failReset(h, change);

    const recorded = await awaitOutcomes(h, change, 2);
    const received = mails(h);
    expect(received).toHaveLength(2);
    const admin = received.find((m) => m.to === ADMIN)!;
    const user = received.find((m) => m.to === "john.doe@corp.example")!;
    expect(admin.subject).toBe("Password sync failed for jdoe: the new password does not meet the Microsoft 365 password complexity requirements");
    expect(admin.text).toContain("Domain controller:  DC01.corp.example");
    expect(admin.text).toContain("RESET_FAILURE_REASON_COMPLEXITY");
    expect(admin.text).toContain(change.changeId);
    expect(admin.headers.get("auto-submitted")).toEqual(["auto-generated"]);
    expect(user.subject).toBe("Your new password could not be synchronised to Microsoft 365");
    expect(user.text).toContain("jdoe");
    expect(user.text).toContain("complexity requirements");

    expect(recorded.map((o) => [o.type, o.role, o.recipient]).sort()).toEqual([
      ["NotificationSent", RecipientRole.ADMIN, ADMIN],
      ["NotificationSent", RecipientRole.END_USER, "john.doe@corp.example"],
    ]);
    const sentToAdmin = fromJson(events.NotificationSent, recorded.find((o) => o.role === RecipientRole.ADMIN)!.event.data as JsonValue);
    expect(sentToAdmin.smtpMessageId).toBe(admin.messageId);
    expect(sentToAdmin.aboutEventType).toBe("ResetFailed");
    expect(recorded[0]!.event.metadata.actor).toBe("notifier");
  });

  it("never lets an AD mail attribute that is a list add a recipient: 'bob,attacker@evil.example' mails the UPN instead", async () => {
    const h = await harness();
    const catcher = await startCatcher(h);
    await runNotifier(h, configFor(h, catcher.port));
    const change = await captureChange(h, "bob", "bob,attacker@evil.example");
    await failReset(h, change);
    const recorded = await awaitOutcomes(h, change, 2);
    expect(recorded.map((o) => o.recipient).sort()).toEqual([ADMIN, "bob@corp.example"].sort());
    const received = await eventually("2 mails", async () => (mails(h).length >= 2 ? mails(h) : undefined));
    expect(received.map((m) => m.to).sort()).toEqual([ADMIN, "bob@corp.example"].sort());
    for (const m of received) expect(m.raw).not.toContain("evil.example");
  });

  it("emails only the admin about a resolution failure when end-user alerts are off", async () => {
    const h = await harness();
    const catcher = await startCatcher(h);
    await runNotifier(h, configFor(h, catcher.port, { notifyEndUser: false }));
    const change = await captureChange(h);
    const failed = create(events.ResolutionFailed, {
      changeId: change.changeId,
      reason: ResolutionFailureReason.NOT_FOUND,
      detail: "no Entra user has mail john.doe@corp.example",
    });
    await appendToStream(h.eventLog.db, change.streamId, [{ type: "ResolutionFailed", data: toJson(events.ResolutionFailed, failed) }], { expectedVersion: 1 });

    const recorded = await awaitOutcomes(h, change, 1);
    await h.notifier!.stop();
    expect(recorded.map((o) => [o.type, o.recipient])).toEqual([["NotificationSent", ADMIN]]);
    expect(mails(h).map((m) => m.to)).toEqual([ADMIN]);
    expect(mails(h)[0]!.text).toContain("no matching user exists in Microsoft Entra ID");
  });

  it("throttles a recipient beyond the per-window limit: NotificationThrottled and no more emails", async () => {
    const h = await harness();
    const catcher = await startCatcher(h);
    await runNotifier(h, configFor(h, catcher.port, { throttle: { maxPerWindow: 2, windowMinutes: 60 } }));

    const changes: Change[] = [];
    for (let i = 0; i < 3; i++) {
      const change = await captureChange(h);
      await failReset(h, change);
      await awaitOutcomes(h, change, 2);
      changes.push(change);
    }
    const third = await outcomes(h, changes[2]!);
    expect(third.map((o) => [o.type, o.recipient]).sort()).toEqual([
      ["NotificationThrottled", ADMIN],
      ["NotificationThrottled", "john.doe@corp.example"],
    ]);
    const until = fromJson(events.NotificationThrottled, third[0]!.event.data as JsonValue).throttledUntil!;
    expect(Number(until.seconds) * 1000).toBeGreaterThan(Date.now() + 50 * 60_000);

    expect(mails(h).filter((m) => m.to === ADMIN)).toHaveLength(2);
    expect(mails(h).filter((m) => m.to === "john.doe@corp.example")).toHaveLength(2);
    // Another user's address has its own budget.
    const other = await captureChange(h, "asmith", "anna.smith@corp.example");
    await failReset(h, other);
    const otherOutcomes = await awaitOutcomes(h, other, 2);
    expect(otherOutcomes.map((o) => [o.type, o.recipient]).sort()).toEqual([
      ["NotificationSent", "anna.smith@corp.example"],
      ["NotificationThrottled", ADMIN],
    ]);
    const rows = await h.eventLog.db.selectFrom("notifier_throttle").select(["recipient", "sent_in_window"]).orderBy("recipient").execute();
    expect(rows).toEqual([
      { recipient: "anna.smith@corp.example", sent_in_window: 1 },
      { recipient: ADMIN, sent_in_window: 2 },
      { recipient: "john.doe@corp.example", sent_in_window: 2 },
    ]);
  });

  it("keeps retrying while the SMTP relay is down and delivers once it is back", async () => {
    const h = await harness();
    const relayPort = await freePort();
    await runNotifier(h, configFor(h, relayPort, { smtp: { maxAttempts: 50 } }));
    const change = await captureChange(h);
    await failReset(h, change);

    await eventually("two failed delivery attempts logged", async () => h.logLines.some((l) => l.includes("unavailable (attempt 2 of 50)")));
    expect(await outcomes(h, change)).toEqual([]);

    await startCatcher(h, relayPort);
    const recorded = await awaitOutcomes(h, change, 2);
    expect(recorded.map((o) => o.type)).toEqual(["NotificationSent", "NotificationSent"]);
    expect(mails(h)).toHaveLength(2);
  });

  it("records NotificationFailed after smtp.maxAttempts and moves on", async () => {
    const h = await harness();
    await runNotifier(h, configFor(h, await freePort(), { smtp: { maxAttempts: 2 }, notifyEndUser: false }));
    const change = await captureChange(h);
    await failReset(h, change);

    const [failed] = await awaitOutcomes(h, change, 1);
    expect(failed!.type).toBe("NotificationFailed");
    const detail = fromJson(events.NotificationFailed, failed!.event.data as JsonValue).detail;
    expect(detail).toMatch(/^gave up after 2 attempts; the SMTP relay 127\.0\.0\.1:\d+ was unavailable: .*ECONNREFUSED/);
    // A slot is reserved before each try and given back when the relay is down: nothing counts.
    const windows = await h.eventLog.db.selectFrom("notifier_throttle").select("sent_in_window").execute();
    expect(windows.reduce((sum, w) => sum + w.sent_in_window, 0)).toBe(0);
  });

  it("does not email again when the events are delivered again (checkpoint replay)", async () => {
    const h = await harness();
    const catcher = await startCatcher(h);
    const config = configFor(h, catcher.port);
    const first = await runNotifier(h, config);
    const change = await captureChange(h);
    await failReset(h, change);
    await awaitOutcomes(h, change, 2);
    await first.stop();

    await h.eventLog.db.deleteFrom("consumer_checkpoints").where("group_name", "=", "notifier").execute();
    const second = await runNotifier(h, config);
    await eventually("the replayed ResetFailed to be handled", async () => second.processor.processedCount() >= 1);
    expect(await outcomes(h, change)).toHaveLength(2);
    expect(mails(h)).toHaveLength(2);
  });

  it("authenticates to a relay that requires credentials", async () => {
    const h = await harness();
    const credentials = { user: "pwsync-relay", pass: randomBytes(12).toString("base64url") };
    const catcher = await startCatcher(h, 0, credentials);
    await runNotifier(h, configFor(h, catcher.port, { smtp: credentials, notifyEndUser: false }));
    const change = await captureChange(h);
    await failReset(h, change);
    await awaitOutcomes(h, change, 1);
    expect(catcher.messages().map((m) => m.authUser)).toEqual(["pwsync-relay"]);
  });

  it("never puts anything from the sealed_secrets table into an email, an event or a log line", async () => {
    const h = await harness();
    const catcher = await startCatcher(h);
    await runNotifier(h, configFor(h, catcher.port));
    const change = await captureChange(h);
    // As if a careless writer had stored the password in plaintext: it still must not travel.
    const canary = `Canary-${randomBytes(12).toString("base64url")}`;
    await storeSealedSecret(h.eventLog.db, change.changeId, "executor-2025", Buffer.from(canary, "utf8"));
    await failReset(h, change);
    const recorded = await awaitOutcomes(h, change, 2);

    const row = await h.eventLog.db.selectFrom("sealed_secrets").select("envelope").where("change_id", "=", change.changeId).executeTakeFirstOrThrow();
    const forms = [canary, row.envelope.toString("base64"), row.envelope.toString("hex"), row.envelope.toString("base64url")];
    const received = mails(h);
    expect(received).toHaveLength(2);
    const everything = [...received.flatMap((m) => [m.raw, m.text, m.subject]), ...recorded.map((o) => JSON.stringify(o.event.data)), ...h.logLines];
    for (const text of everything) for (const form of forms) expect(text).not.toContain(form);
    // The emails do carry the facts, so the check above inspected real content.
    expect(received.every((m) => m.text.includes(change.changeId))).toBe(true);
  });

  it("reports SERVING on the gRPC health service while running", async () => {
    const h = await harness();
    const catcher = await startCatcher(h);
    const notifier = await runNotifier(h, configFor(h, catcher.port));
    const client = new grpc.Client(`127.0.0.1:${notifier.healthPort}`, grpc.credentials.createInsecure());
    cleanups.push(() => client.close());
    const { path, requestSerialize, responseDeserialize } = healthService.Check!;
    const check = (service: string) =>
      new Promise<unknown>((resolve, reject) =>
        client.makeUnaryRequest(path, requestSerialize, responseDeserialize, { service }, (err, res) => (err ? reject(err) : resolve(res))),
      );
    expect(await check("")).toEqual({ status: "SERVING" });
    expect(await check("pwsync.notifier")).toEqual({ status: "SERVING" });
  });
});
