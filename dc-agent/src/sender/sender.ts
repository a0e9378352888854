import { fromBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { IngestStream, StreamClosedError, type Ack, type IngestEndpoint } from "@pwsync/agent-link";
import type { Logger } from "@pwsync/log";
import { PasswordChangeSchema } from "@pwsync/proto";
import type { AgentConfig } from "../config.js";
import type { DurableQueue, QueueEntry } from "../queue/durableQueue.js";
import { writeQuarantine } from "./quarantine.js";

export interface NamedEndpoint extends IngestEndpoint {
  role: "primary" | "secondary";
}

type SessionEnd =
  | { kind: "stopped" }
  | { kind: "idle" }
  | { kind: "failback" }
  /** Not the server's fault in general (a refused change was quarantined): reconnect at once. */
  | { kind: "retryNow" }
  | { kind: "failed"; reason: string };

/** Resolves after `ms`, on abort, or when `hook` receives the wake-up function and calls it. */
function sleep(ms: number, signal: AbortSignal, hook?: (wake: () => void) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
    hook?.(done);
  });
}

/**
 * Streams the queue to ingest, oldest first, one ordered stream at a time (ingest commits in
 * stream order, so per-account order holds). The seed's semantics: primary first and the
 * secondary at once when it fails; `connectionAttempts` such rounds, then
 * `connectionFailDelayMs`; `timeoutMs` without a commit ack = resubmit on a new connection.
 * An entry leaves the queue only on ingest's commit (or duplicate) ack.
 */
export class Sender {
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private probeOne = false;
  private pendingDone = new Set<Promise<void>>();
  connectedTo: NamedEndpoint["role"] | undefined;
  lastError: string | undefined;

  constructor(
    private readonly deps: {
      queue: DurableQueue;
      endpoints: NamedEndpoint[];
      config: AgentConfig["ingest"];
      dataDir: string;
      logger: Logger;
      /** Fault injection for the crash test only: called after a commit ack arrives, before it is recorded. */
      beforeRecordingAck?: (ack: Ack) => void;
    },
  ) {}

  start(): void {
    this.loop ??= this.run().catch((err: unknown) => this.deps.logger.fatal({ err: (err as Error).message }, "sender loop crashed"));
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    await Promise.all(this.pendingDone);
  }

  private async run(): Promise<void> {
    const { queue, config, logger } = this.deps;
    const signal = this.abort.signal;
    let failedRounds = 0;
    while (!signal.aborted) {
      if (queue.depth === 0) await queue.waitForEntries(-1, signal);
      if (signal.aborted) break;
      let end: SessionEnd | undefined;
      for (const endpoint of this.deps.endpoints) {
        end = await this.session(endpoint);
        if (end.kind !== "failed") break;
        this.lastError = `${endpoint.role} ${endpoint.address}: ${end.reason}`;
        logger.warn({ server: endpoint.role, address: endpoint.address, reason: end.reason }, "ingest server failed");
      }
      if (end?.kind !== "failed") {
        failedRounds = 0;
        continue;
      }
      failedRounds++;
      if (failedRounds >= config.connectionAttempts) {
        logger.error(
          { attempts: failedRounds, delayMs: config.connectionFailDelayMs, queueDepth: queue.depth },
          "no ingest server reachable; waiting the connection fail delay (changes stay queued)",
        );
        failedRounds = 0;
        await sleep(config.connectionFailDelayMs, signal);
      } else {
        await sleep(config.attemptPauseMs, signal);
      }
    }
  }

  private async session(endpoint: NamedEndpoint): Promise<SessionEnd> {
    const { queue, config, logger } = this.deps;
    const signal = this.abort.signal;
    const stream = new IngestStream(endpoint);
    const startedAt = Date.now();
    const window = this.probeOne ? 1 : config.window;
    const inflight = new Map<string, { seqs: number[]; entry: QueueEntry; sentAt: number }>();
    const events: ({ kind: "ack"; ack: Ack } | { kind: "error"; err: unknown })[] = [];
    let wake: (() => void) | undefined;
    const notify = () => wake?.();
    let cursor = -1;
    let announced = false;
    try {
      for (;;) {
        if (signal.aborted) return { kind: "stopped" };
        // Fill the window, oldest first.
        while (inflight.size < window) {
          const batch = queue.read(cursor, window - inflight.size);
          if (batch.length === 0) break;
          for (const entry of batch) {
            cursor = entry.seq;
            const change = fromBinary(PasswordChangeSchema, entry.change);
            const same = inflight.get(change.changeId);
            // The same capture queued twice (a re-delivered frame): one send, both entries done on its ack.
            if (same) {
              same.seqs.push(entry.seq);
              continue;
            }
            inflight.set(change.changeId, { seqs: [entry.seq], entry, sentAt: Date.now() });
            stream.send(change).then(
              (ack) => {
                events.push({ kind: "ack", ack });
                notify();
              },
              (err: unknown) => {
                events.push({ kind: "error", err });
                notify();
              },
            );
          }
        }
        if (inflight.size === 0 && events.length === 0) {
          if (endpoint.role === "secondary" && Date.now() - startedAt > config.failbackAfterMs) return { kind: "failback" };
          if (queue.depth === 0) return { kind: "idle" };
          const idle = new AbortController();
          await Promise.race([queue.waitForEntries(cursor, idle.signal), sleep(1000, signal)]);
          idle.abort();
          continue;
        }
        if (events.length === 0) {
          // A Map iterates in insertion order, and entries are inserted as they are sent.
          const oldest = inflight.values().next().value!.sentAt;
          const left = oldest + config.timeoutMs - Date.now();
          if (left <= 0) return { kind: "failed", reason: `no commit ack within ${config.timeoutMs} ms; resubmitting on a new connection` };
          await sleep(left, signal, (w) => (wake = w));
          wake = undefined;
        }
        for (const event of events.splice(0)) {
          if (event.kind === "ack") {
            const item = inflight.get(event.ack.changeId);
            if (!item) continue;
            inflight.delete(event.ack.changeId);
            if (!announced) {
              announced = true;
              this.connectedTo = endpoint.role;
              this.lastError = undefined;
              logger.info({ server: endpoint.role, address: endpoint.address }, "streaming changes to ingest");
            }
            if (this.probeOne) this.probeOne = false;
            this.deps.beforeRecordingAck?.(event.ack);
            if (event.ack.status === "refused") {
              // Ingest recorded the refusal (ChangeRefused) and kept no secret: retrying cannot help.
              logger.error(
                { changeId: event.ack.changeId, server: endpoint.role },
                "ALARM: ingest refused this change for good (outside this agent's scope?); dropped, see the change's ChangeRefused event",
              );
              for (const seq of item.seqs) this.track(queue.markDone(seq, "quarantined"));
              continue;
            }
            logger.info(
              { changeId: event.ack.changeId, status: event.ack.status, globalPosition: event.ack.globalPosition.toString(), server: endpoint.role },
              "change committed by ingest",
            );
            for (const seq of item.seqs) this.track(queue.markDone(seq, event.ack.status));
            continue;
          }
          return this.onStreamError(event.err, inflight, endpoint);
        }
      }
    } finally {
      this.connectedTo = undefined;
      await stream.close().catch(() => {});
    }
  }

  private track(p: Promise<void>): void {
    const guarded = p.catch((err: unknown) =>
      this.deps.logger.error({ err: (err as Error).message }, "could not record a delivered change (it will be re-sent; ingest deduplicates)"),
    );
    this.pendingDone.add(guarded);
    void guarded.finally(() => this.pendingDone.delete(guarded));
  }

  private onStreamError(err: unknown, inflight: Map<string, { seqs: number[]; entry: QueueEntry }>, endpoint: NamedEndpoint): SessionEnd {
    const { logger } = this.deps;
    if (!(err instanceof StreamClosedError)) return { kind: "failed", reason: (err as Error).message };
    const code = grpc.status[err.code] ?? String(err.code);
    switch (err.code) {
      case grpc.status.INVALID_ARGUMENT:
      case grpc.status.RESOURCE_EXHAUSTED: {
        const named = err.refusedChangeId;
        const culprit = named ? inflight.get(named) : this.probeOne || inflight.size === 1 ? [...inflight.values()][0] : undefined;
        if (!culprit) {
          // Several changes in flight and ingest did not say which: send one at a time to find it.
          this.probeOne = true;
          logger.warn({ code, details: err.details }, "ingest refused a change without naming it; resending one at a time");
          return { kind: "retryNow" };
        }
        const changeId = named ?? [...inflight.keys()][[...inflight.values()].indexOf(culprit)]!;
        const file = writeQuarantine(this.deps.dataDir, { changeId, seq: culprit.seqs[0]!, code, details: err.details, change: culprit.entry.change });
        logger.error({ changeId, code, details: err.details, file }, "ALARM: ingest refused a change for good; moved to quarantine (sealed), not retried");
        for (const seq of culprit.seqs) this.track(this.deps.queue.markDone(seq, "quarantined"));
        this.probeOne = false;
        return { kind: "retryNow" };
      }
      case grpc.status.FAILED_PRECONDITION:
        logger.error(
          { server: endpoint.role, details: err.details },
          "ALARM: ingest does not accept the key changes are sealed to; changes stay queued until the sealing key is fixed",
        );
        return { kind: "failed", reason: `${code}: ${err.details}` };
      case grpc.status.UNAUTHENTICATED:
      case grpc.status.PERMISSION_DENIED:
        logger.error({ server: endpoint.role, details: err.details }, "ALARM: ingest refused this agent's client certificate; changes stay queued");
        return { kind: "failed", reason: `${code}: ${err.details}` };
      default:
        return { kind: "failed", reason: `${code}: ${err.details}` };
    }
  }
}
