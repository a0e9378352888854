import { appendToStream, failedChangesWithSecret, shredSealedSecret, type EventLog } from "@pwsync/eventlog";
import type { Logger } from "@pwsync/log";
import { newEvent } from "@pwsync/proto";

/**
 * Closes the retry window: a failed change's sealed password, kept so an admin could retry it,
 * is shredded (SecretShredded appended in the same transaction) once the failure is older than
 * `retentionMs`. The append is at the stream's current version, so an admin's RetryRequested
 * racing it wins or loses cleanly; the loser tries again next sweep.
 */
export async function reapExpiredSecrets(log: EventLog, retentionMs: number, logger: Logger, now = new Date()): Promise<number> {
  const due = await failedChangesWithSecret(log.db, new Date(now.getTime() - retentionMs));
  let shredded = 0;
  for (const change of due) {
    const done = await log.db.transaction().execute(async (trx) => {
      const appended = await appendToStream(
        trx,
        change.streamId,
        [{ ...newEvent("SecretShredded", { changeId: change.changeId }), metadata: { actor: "reset-executor" } }],
        {
          expectedVersion: change.streamVersion,
        },
      );
      if (!appended.success) return false;
      await shredSealedSecret(trx, change.changeId);
      return true;
    });
    if (done) {
      shredded++;
      logger.info({ changeId: change.changeId }, "retry window closed; sealed password of the failed change shredded");
    }
  }
  return shredded;
}

export function startSecretReaper(log: EventLog, retentionMs: number, logger: Logger, intervalMs = 60_000): { stop(): Promise<void> } {
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    running = reapExpiredSecrets(log, retentionMs, logger).catch((err: unknown) =>
      logger.warn({ err: (err as Error).message }, "secret reaper sweep failed; will try again"),
    );
  }, intervalMs);
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
