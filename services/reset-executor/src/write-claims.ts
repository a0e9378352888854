import { randomUUID } from "node:crypto";
import { type Database, type Fence, FencedOut } from "@pwsync/eventlog";
import { type Kysely, sql } from "kysely";
import { GroupedRequests } from "@pwsync/grouping";

export interface ClaimRequest {
  fence: Fence;
  entraUserId: string;
  changeId: string;
}

/** `attemptId`: recorded as possibly in flight, send now; `waitMs`: another change's write for the user may still land. */
export type WriteClaim = { attemptId: string } | { waitMs: number };

/**
 * Fencing right before a PATCH (ARCHITECTURE.md, "Fencing"), for every change that asks at about
 * the same time in one statement: it share-locks the partitions' checkpoint rows and refuses a
 * stale token, and for each change it records the write as possibly in flight until it expires,
 * unless a write of another change for the same user may still be in flight (then it says how
 * long that may take). A new owner's token raise waits for the row lock, so whatever this
 * statement recorded is visible to the new owner's first look.
 *
 * Claims group-commit: one statement runs at a time, and whatever was asked meanwhile goes into
 * the next, so a lone claim is not delayed and a busy executor pays one round trip per group
 * instead of six per write.
 */
export class WriteClaims {
  private readonly rounds = new GroupedRequests<ClaimRequest, WriteClaim>(
    async (requests) => (await this.claimRound(requests)).map((claim, i) => (claim === "fenced" ? new FencedOut(requests[i]!.fence) : claim)),
    { kindOf: (request) => request.fence.group, keyOf: (request) => request.entraUserId },
  );

  constructor(
    private readonly db: Kysely<Database>,
    /** How long a recorded attempt counts as possibly in flight. */
    private readonly lifetimeMs: number,
  ) {}

  claim(request: ClaimRequest): Promise<WriteClaim> {
    return this.rounds.ask(request);
  }

  /** One group, one consumer group, at most one request per user (takeRound). */
  private async claimRound(requests: ClaimRequest[]): Promise<Array<WriteClaim | "fenced">> {
    const attemptIds = requests.map(() => randomUUID());
    // The checkpoint rows are locked as the join reads them; an attempt is inserted only through
    // a locked row whose token still matches (a concurrent raise makes the lock re-read the
    // newer row, whose token then does not match), so a stale owner records nothing. The
    // expired attempts deleted here are invisible to the rest of the statement, hence the
    // `expires_at > now()` where they are counted.
    const result = await sql<{ attempt_id: string; owns: boolean; wait_ms: number | null; granted: boolean }>`
      WITH request AS (
        SELECT * FROM unnest(${requests.map((r) => r.fence.partition)}::int[], ${requests.map((r) => String(r.fence.token))}::bigint[],
                             ${requests.map((r) => r.entraUserId)}::text[], ${requests.map((r) => r.changeId)}::text[], ${attemptIds}::uuid[])
                   AS r(partition, fence, entra_user_id, change_id, attempt_id)
      ),
      owned AS MATERIALIZED (
        SELECT partition, fence FROM consumer_checkpoints
         WHERE group_name = ${requests[0]!.fence.group} AND partition IN (SELECT partition FROM request)
           FOR SHARE
      ),
      expired AS (
        DELETE FROM graph_write_attempts a USING request r WHERE a.entra_user_id = r.entra_user_id AND a.expires_at <= now()
      ),
      checked AS (
        SELECT r.attempt_id, r.entra_user_id, r.change_id, o.partition IS NOT NULL AS owns,
               (SELECT ceil(extract(epoch FROM max(a.expires_at) - now()) * 1000)::int FROM graph_write_attempts a
                 WHERE a.entra_user_id = r.entra_user_id AND a.change_id <> r.change_id AND a.expires_at > now()) AS wait_ms
          FROM request r LEFT JOIN owned o ON o.partition = r.partition AND o.fence = r.fence
      ),
      inserted AS (
        INSERT INTO graph_write_attempts (attempt_id, entra_user_id, change_id, expires_at)
        SELECT attempt_id, entra_user_id, change_id, now() + make_interval(secs => ${this.lifetimeMs / 1000})
          FROM checked WHERE owns AND coalesce(wait_ms, 0) <= 0
        RETURNING attempt_id
      )
      SELECT c.attempt_id, c.owns, c.wait_ms, i.attempt_id IS NOT NULL AS granted
        FROM checked c LEFT JOIN inserted i ON i.attempt_id = c.attempt_id`.execute(this.db);
    const byAttempt = new Map(result.rows.map((row) => [row.attempt_id, row]));
    return attemptIds.map((attemptId) => {
      const row = byAttempt.get(attemptId);
      if (!row?.owns) return "fenced";
      if (row.granted) return { attemptId };
      return { waitMs: Math.max(1, row.wait_ms ?? 1) };
    });
  }
}
