import { readStream, type EventLog } from "@pwsync/eventlog";
import type { Logger } from "@pwsync/log";
import { AGENT_REVOCATIONS_STREAM, normalizeFingerprint } from "@pwsync/pki/names";
import { decodeEvent } from "@pwsync/proto";

export interface RevocationList {
  isRevoked(fingerprint256: string): boolean;
  /** Called with each newly revoked fingerprint, so open streams can be ended. */
  onRevoked(listener: (fingerprint256: string) => void): () => void;
  stop(): void;
}

/**
 * The revoked agent certificates, read from the append-only "agent-revocations" stream (written
 * by the admin API) at start and then every `pollMs`. Polling a short stream keeps ingest free
 * of extra connections (LISTEN) and works the same with any number of ingest replicas; a
 * revocation reaches every open stream within one poll. Until the first read succeeds ingest
 * refuses nobody extra, so the first read happens before the server starts listening.
 */
export async function startRevocationList(log: EventLog, logger: Logger, pollMs: number): Promise<RevocationList> {
  const revoked = new Set<string>();
  const listeners = new Set<(fingerprint256: string) => void>();
  let seen = 0;
  const refresh = async () => {
    const events = await readStream(log.db, AGENT_REVOCATIONS_STREAM);
    for (const event of events.slice(seen)) {
      if (event.type !== "AgentCertificateRevoked") continue;
      const fingerprint = normalizeFingerprint(decodeEvent("AgentCertificateRevoked", event.data).certificateFingerprint);
      if (!fingerprint || revoked.has(fingerprint)) continue;
      revoked.add(fingerprint);
      logger.warn({ certificateFingerprint: fingerprint }, "agent certificate revoked");
      for (const listener of listeners) listener(fingerprint);
    }
    seen = events.length;
  };
  await refresh();
  let stopped = false;
  let timer: NodeJS.Timeout;
  const tick = () => {
    timer = setTimeout(() => {
      refresh()
        .catch((err) => logger.error({ err: (err as Error).message }, "could not re-read agent revocations; keeping the previous list"))
        .finally(() => {
          if (!stopped) tick();
        });
    }, pollMs);
    timer.unref();
  };
  tick();
  return {
    isRevoked: (fingerprint256) => revoked.has(fingerprint256.toUpperCase()),
    onRevoked(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
