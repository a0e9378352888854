import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Logger } from "@pwsync/log";
import { PasswordChangeSchema } from "@pwsync/proto";
import { DirectoryError, type Directory } from "../ldap/directory.js";
import type { DurableQueue } from "../queue/durableQueue.js";
import { decideScope } from "./scopeDecision.js";

export interface ScopeStageDeps {
  /** Sealed changes as captured (captureChange). */
  intake: DurableQueue;
  /** Changes in scope, with their AD attributes, for the sender. */
  outbox: DurableQueue;
  directory: Pick<Directory, "lookup">;
  logger: Logger;
  /** Pause before asking an unreachable directory again. */
  retryDelayMs: number;
}

/**
 * The LDAP scope check, run from the durable intake queue after the source was acknowledged:
 * one change at a time, oldest first, so the outbox keeps capture-arrival order. An in-scope
 * change gets the account's UPN, mail and objectGUID and moves to the outbox (appended, fsynced,
 * only then marked done in the intake: a crash in between repeats the move, and ingest stores
 * the repeated change id once); an out-of-scope change is dropped with a log line; while the
 * directory cannot be asked the change stays at the head and is asked about again later —
 * nothing is dropped because LDAP is down.
 */
export class ScopeStage {
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private waitingSince: number | undefined;

  constructor(private readonly deps: ScopeStageDeps) {}

  start(): void {
    this.loop ??= this.run().catch((err: unknown) =>
      this.deps.logger.fatal({ err: (err as Error).message }, "scope check stopped; changes stay in the intake queue"),
    );
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    const { intake, logger } = this.deps;
    const signal = this.abort.signal;
    let after = -1;
    while (!signal.aborted) {
      const [entry] = intake.read(after, 1);
      if (!entry) {
        await intake.waitForEntries(after, signal);
        continue;
      }
      const change = fromBinary(PasswordChangeSchema, entry.change);
      const capturedAt = change.capturedAt ? timestampDate(change.capturedAt) : change.changedAt ? timestampDate(change.changedAt) : entry.enqueuedAt;
      const log = logger.child({ changeId: change.changeId, account: change.accountName, filterSequence: change.captureSequence.toString() });
      let answer: Parameters<typeof decideScope>[1];
      try {
        answer = { kind: "answered", result: await this.deps.directory.lookup(change.accountName) };
      } catch (err) {
        answer = { kind: "unreachable", reason: err instanceof DirectoryError ? err.message : `LDAP lookup failed: ${(err as Error).message}` };
      }
      const decision = decideScope(capturedAt, answer);
      if (decision.action === "wait") {
        // One error line per outage, not one per retry; the queue-age alarm covers a long one.
        if (this.waitingSince === undefined) {
          this.waitingSince = Date.now();
          log.error({ err: decision.reason, retryDelayMs: this.deps.retryDelayMs }, "cannot look the account up; the change stays queued and is checked again");
        }
        await sleep(this.deps.retryDelayMs, signal);
        continue;
      }
      if (this.waitingSince !== undefined) {
        log.info({ waitedMs: Date.now() - this.waitingSince }, "directory reachable again; scope checks resume");
        this.waitingSince = undefined;
      }
      if (decision.action === "drop") {
        await intake.markDone(entry.seq, "outOfScope");
        log.info({ reason: decision.reason }, "change dropped: account outside the sync scope");
      } else {
        const check = decision.passwordLastSet;
        if (check.kind === "captureAfterPasswordLastSet")
          log.warn({ byMs: check.byMs }, "AD's pwdLastSet is older than the capture time: check this DC's clock; the change is ordered by capture time");
        else if (check.kind === "newerChangeSince")
          log.info({ byMs: check.byMs }, "the account's password changed again since this capture; ordering by capture time keeps the newer one");
        const enriched = { ...change, ...decision.enrich };
        const seq = await this.deps.outbox.append(toBinary(PasswordChangeSchema, enriched));
        await intake.markDone(entry.seq, "scoped");
        log.info({ seq, mail: enriched.mail, upn: enriched.userPrincipalName }, "change in scope; queued for ingest");
      }
      after = entry.seq;
    }
  }

  /** The directory has not answered since this time (for verify and heartbeats); undefined when fine. */
  get directoryUnreachableSince(): Date | undefined {
    return this.waitingSince === undefined ? undefined : new Date(this.waitingSince);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}
