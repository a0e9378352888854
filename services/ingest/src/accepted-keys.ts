import { acceptedKeyIds, epochsFromEvents, epochState, SEALING_KEYS_STREAM } from "@pwsync/crypto";
import { readStream, type EventLog } from "@pwsync/eventlog";
import type { Logger } from "@pwsync/log";

/**
 * The sealing key ids ingest accepts, kept current from the reset-executor's key epochs (stream
 * "sealing-keys"): the configured ids plus the current and overlapping keys, minus keys past
 * their overlap or destroyed. Re-read every `pollMs`; the returned set is updated in place.
 */
export async function startAcceptedKeys(
  log: EventLog,
  configured: readonly string[],
  logger: Logger,
  pollMs: number,
): Promise<{ keys: ReadonlySet<string>; currentPublicKeyPem(): string; stop(): void }> {
  const keys = new Set(configured);
  let currentPem = "";
  const refresh = async () => {
    const epochs = epochsFromEvents(await readStream(log.db, SEALING_KEYS_STREAM));
    const now = new Date();
    currentPem = epochs.find((e) => epochState(e, now) === "current")?.publicKeyPem ?? "";
    const next = acceptedKeyIds(configured, epochs, now);
    const changed = next.size !== keys.size || [...next].some((k) => !keys.has(k));
    if (!changed) return;
    keys.clear();
    for (const k of next) keys.add(k);
    logger.info({ acceptedKeyIds: [...keys] }, "accepted sealing keys changed");
  };
  await refresh();
  let stopped = false;
  let timer: NodeJS.Timeout;
  const tick = () => {
    timer = setTimeout(() => {
      refresh()
        .catch((err) => logger.error({ err: (err as Error).message }, "could not re-read sealing key epochs; keeping the previous list"))
        .finally(() => {
          if (!stopped) tick();
        });
    }, pollMs);
    timer.unref();
  };
  tick();
  return {
    keys,
    currentPublicKeyPem: () => currentPem,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
