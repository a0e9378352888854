import { randomUUID } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { buildPasswordChange, IngestStream, StreamClosedError } from "@pwsync/agent-link";
import { demoUsers, pushChanges, startStack, waitForOutcomes, type PlannedChange, type Stack } from "@pwsync/devstack";
import { openEventLog, readStream, type EventLog } from "@pwsync/eventlog";
import { sandboxControl } from "@pwsync/sandbox-tenant";
import { parseEml } from "@pwsync/smtp-catcher";
import { eventually } from "@pwsync/testkit";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// The whole server side as separate OS processes (what `npm start` runs): embedded Postgres,
// sandbox tenant, SMTP catcher, ingest, resolver, reset-executor, notifier. Changes enter as an
// agent sends them: sealed, over mTLS.

const canary = `E2E-Canary-${randomUUID().slice(0, 8)}`;
let serial = 0;
const password = () => `${canary}-${++serial}-Aa!`;
const users = demoUsers(60);
let stack: Stack;
let log: EventLog;
let control: ReturnType<typeof sandboxControl>;
let dataDir: string;

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), "pwsync-e2e-"));
  stack = await startStack({
    dataDir,
    ports: "random",
    sandbox: { users, scryptCost: 1024 },
    overlay: { notifier: { throttle: { maxPerWindow: 2, windowMinutes: 60 } }, executor: { backoff: { baseMs: 50, maxMs: 200 } } },
  });
  log = await openEventLog(stack.databaseUrl, { migrate: false, maxConnections: 3 });
  control = sandboxControl(stack.sandboxUrl!, readFileSync(stack.pki.ca.cert));
}, 600_000); // a bound for starting real processes on a loaded 2-core machine, not a schedule

afterAll(async () => {
  await log?.close();
  await stack?.stop();
});

function plan(userIndex: number, secret: string, changedAt = new Date(), agent = "dc01"): PlannedChange {
  return { changeId: randomUUID(), user: users[userIndex]!, password: secret, changedAt, agent };
}

async function terminalEventsPerChange(changeIds: string[]): Promise<Map<string, string[]>> {
  const result = new Map<string, string[]>();
  for (const id of changeIds) {
    const events = await readStream(log.db, `change-${id}`);
    result.set(
      id,
      events.filter((e) => ["PasswordSet", "ResetFailed", "Superseded", "ResolutionFailed"].includes(e.type)).map((e) => e.type),
    );
  }
  return result;
}

function mails(): Array<ReturnType<typeof parseEml>> {
  return readdirSync(stack.mailDir)
    .filter((f) => f.endsWith(".eml"))
    .map((f) => parseEml(readFileSync(path.join(stack.mailDir, f), "utf8")));
}

describe("the whole stack, one process per service", () => {
  it("sets passwords end to end: the sandbox sign-in accepts each new password", async () => {
    const planned = Array.from({ length: 20 }, (_, i) => plan(i, password()));
    const sent = await pushChanges(stack, planned);
    const outcomes = await waitForOutcomes(log, new Set(sent.map((s) => s.changeId)), { timeoutMs: 60_000 });
    expect([...outcomes.values()].map((o) => o.type)).toEqual(Array(20).fill("PasswordSet"));
    for (const change of planned) expect(await control.signIn(change.user.userPrincipalName, change.password)).toBe(true);
  });

  it("alerts admin and user by email on a complexity failure, and the throttle suppresses repeats", async () => {
    const before = mails().length;
    // One after the other, as a user retrying a weak password would: four changes of one user
    // with the same capture time would be ordered by change id (newest wins, ties never both
    // applied), so all but the "newest" would be Superseded rather than fail.
    const planned = Array.from({ length: 4 }, (_, i) => plan(30, "short1A", new Date(Date.now() - 4_000 + i * 1_000)));
    const sent = [];
    for (const change of planned) {
      sent.push(...(await pushChanges(stack, [change])));
      await waitForOutcomes(log, new Set([change.changeId]), { timeoutMs: 60_000 });
    }
    const outcomes = await waitForOutcomes(log, new Set(sent.map((s) => s.changeId)), { timeoutMs: 60_000 });
    expect([...outcomes.values()].every((o) => o.type === "ResetFailed" && o.data.reason === "RESET_FAILURE_REASON_COMPLEXITY")).toBe(true);
    const notifications = await eventually(
      "every failure handled by the notifier",
      async () => {
        const all = [];
        for (const change of planned) {
          const types = (await readStream(log.db, `change-${change.changeId}`)).map((e) => e.type).filter((t) => t.startsWith("Notification"));
          if (types.length < 2) return undefined;
          all.push(...types);
        }
        return all;
      },
      60_000,
    );
    // Throttle: 2 per recipient per window → 2 sent and 2 suppressed for each of admin and user.
    expect(notifications.filter((t) => t === "NotificationSent")).toHaveLength(4);
    expect(notifications.filter((t) => t === "NotificationThrottled")).toHaveLength(4);
    const newMails = await eventually("4 emails caught", async () => (mails().length - before >= 4 ? mails().slice(before) : undefined));
    expect(newMails).toHaveLength(4);
    const recipients = newMails.map((m) => m.headers.get("to")?.[0] ?? "").sort();
    expect(recipients.filter((r) => r.includes("it-admins@contoso.example"))).toHaveLength(2);
    expect(recipients.filter((r) => r.includes(users[30]!.mail))).toHaveLength(2);
  });

  it("ends every change terminal exactly once while each service is kill -9'd mid-flight", async () => {
    await control.faults({ reset: true, latencyMs: 15 });
    const planned = Array.from({ length: 240 }, (_, i) => plan(i % 50, password(), new Date(Date.now() - 240 + i), i % 2 ? "dc01" : "dc02"));
    const firstHalf = planned.slice(0, 120);
    const secondHalf = planned.slice(120);
    const pushing = pushChanges(stack, firstHalf);
    await eventually("work in flight", async () => {
      const r = await sql<{ n: string }>`SELECT count(*) AS n FROM events WHERE type = 'UserResolved'`.execute(log.db);
      return Number(r.rows[0]!.n) > 25;
    });
    await stack.kill("reset-executor#0");
    await stack.kill("resolver#0");
    await stack.kill("notifier#0");
    await pushing;
    // ingest dies with the second half on the wire; the agent re-sends what was not acked.
    const resend = pushChanges(stack, secondHalf).catch((err: unknown) => err);
    await new Promise((r) => setTimeout(r, 30));
    await stack.kill("ingest");
    const interrupted = await resend;
    expect(interrupted instanceof StreamClosedError || Array.isArray(interrupted)).toBe(true);
    const committedBeforeKill = await sql<{
      n: string;
    }>`SELECT count(*) AS n FROM events WHERE type = 'ChangeCaptured' AND stream_id = ANY(${secondHalf.map((c) => `change-${c.changeId}`)})`.execute(log.db);
    await stack.restart("ingest");
    for (const name of ["resolver#0", "reset-executor#0", "notifier#0"]) await stack.restart(name);
    // As an agent does: everything not acked is sent again; what ingest had already committed
    // comes back as a duplicate and is stored once.
    const stream = new IngestStream(stack.agentEndpoint("dc01"));
    const acks = await Promise.all(
      secondHalf.map((c) =>
        stream.send(
          buildPasswordChange(
            stack.recipient,
            {
              changeId: c.changeId,
              accountName: c.user.userPrincipalName.split("@")[0]!,
              userPrincipalName: c.user.userPrincipalName,
              objectGuid: Buffer.from(c.user.onPremisesImmutableId, "base64"),
              changedAt: c.changedAt,
              domainController: "dc01",
            },
            Buffer.from(c.password),
          ),
        ),
      ),
    );
    await stream.close();
    expect(acks.filter((a) => a.status === "duplicate")).toHaveLength(Number(committedBeforeKill.rows[0]!.n));
    const ids = planned.map((p) => p.changeId);
    const outcomes = await waitForOutcomes(log, new Set(ids), { timeoutMs: 120_000 });
    expect(outcomes.size).toBe(planned.length);
    const terminal = await terminalEventsPerChange(ids);
    expect([...terminal.values()].filter((types) => types.length !== 1)).toEqual([]);
    const captured = await sql<{
      n: string;
    }>`SELECT count(*) AS n FROM events WHERE type = 'ChangeCaptured' AND stream_id = ANY(${ids.map((id) => `change-${id}`)})`.execute(log.db);
    expect(Number(captured.rows[0]!.n)).toBe(planned.length);
    // The newest change of each user is the password Entra has.
    const newest = new Map<string, PlannedChange>();
    for (const change of planned) newest.set(change.user.id, change);
    for (const change of newest.values()) {
      expect(outcomes.get(change.changeId)?.type).toBe("PasswordSet");
      expect(await control.signIn(change.user.userPrincipalName, change.password)).toBe(true);
    }
    const secrets = await sql<{ n: string }>`SELECT count(*) AS n FROM sealed_secrets`.execute(log.db);
    expect(Number(secrets.rows[0]!.n)).toBe(0);
    await control.faults({ reset: true });
  }, 240_000);

  it("leaves no test password in the database, service logs, emails or sandbox state", async () => {
    const tables = await sql<{ table_name: string }>`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`.execute(log.db);
    let dump = "";
    for (const { table_name } of tables.rows) {
      const rows = await sql<{ t: string }>`SELECT ${sql.ref(table_name)}::text AS t FROM ${sql.table(table_name)}`.execute(log.db);
      dump += rows.rows.map((r) => r.t).join("\n");
    }
    expect(dump).toContain("ChangeCaptured");
    expect(dump).not.toContain(canary);
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const full = path.join(dir, name);
        if (name === "postgres") continue;
        if (statSync(full).isDirectory()) walk(full);
        else files.push(full);
      }
    };
    walk(dataDir);
    expect(files.some((f) => f.endsWith(".eml"))).toBe(true);
    expect(files.some((f) => f.endsWith("reset-executor-0.log"))).toBe(true);
    const leaking = files.filter((f) => {
      const bytes = readFileSync(f);
      return bytes.includes(Buffer.from(canary, "utf8")) || bytes.includes(Buffer.from(canary, "utf16le"));
    });
    expect(leaking).toEqual([]);
    expect(JSON.stringify(await control.state())).not.toContain(canary);
  });
});
