import pg from "pg";
import { EVENTS_CHANNEL } from "./appendToStream.js";
import { raiseFence } from "./fence.js";
import { fnv1a } from "./partition.js";

export const MEMBER_TTL_SECONDS = 5;

export interface OwnershipEvents {
  /** A NOTIFY from an append: `partition:Type,Type`. */
  notified(partition: number, types: string[]): void;
  /** The control connection died, and every lock with it. */
  lost(error?: Error): void;
}

/**
 * A member's hold on its partitions: session-level advisory locks on one dedicated connection
 * (the control connection), so a member that dies, even by kill -9, frees its partitions the
 * moment its connection drops. The same connection LISTENs for appends and heartbeats the member.
 */
export class PartitionOwnership {
  private readonly key: number;
  private client: pg.Client | undefined;

  constructor(
    private readonly connectionString: string,
    private readonly group: string,
    private readonly events: OwnershipEvents,
  ) {
    this.key = fnv1a(group) | 0;
  }

  get connected(): boolean {
    return this.client !== undefined;
  }

  async connect(): Promise<void> {
    if (this.client) return;
    const client = new pg.Client({ connectionString: this.connectionString, application_name: `pwsync-${this.group}-control` });
    const lost = (err?: Error) => {
      if (this.client !== client) return;
      this.client = undefined;
      client.end().catch(() => {});
      this.events.lost(err);
    };
    client.on("error", lost);
    // A connection closed without an error (the server shut down cleanly) loses the locks too.
    client.on("end", () => lost());
    client.on("notification", (message) => {
      const [partition, types = ""] = (message.payload ?? "").split(":");
      this.events.notified(Number(partition), types === "" ? [] : types.split(","));
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${EVENTS_CHANNEL}`);
    } catch (err) {
      client.end().catch(() => {});
      throw err;
    }
    this.client = client;
  }

  private query<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    if (!this.client) return Promise.reject(new Error("control connection lost"));
    return this.client.query<R>(text, values);
  }

  /** Records this member as alive; answers how many members are. */
  async heartbeat(memberId: string): Promise<number> {
    await this.query(
      `INSERT INTO consumer_members (group_name, member_id, heartbeat_at) VALUES ($1, $2, now())
       ON CONFLICT (group_name, member_id) DO UPDATE SET heartbeat_at = now()`,
      [this.group, memberId],
    );
    const alive = await this.query<{ n: string }>(
      `SELECT count(*) AS n FROM consumer_members WHERE group_name = $1 AND heartbeat_at > now() - make_interval(secs => $2)`,
      [this.group, MEMBER_TTL_SECONDS],
    );
    return Math.max(1, Number(alive.rows[0]?.n ?? 1));
  }

  /** Partitions of the group locked by any member. */
  async lockedByAnyone(): Promise<Set<number>> {
    const held = await this.query<{ objid: number }>(
      "SELECT objid::int AS objid FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND classid::int = $1 AND objsubid = 2 AND granted",
      [this.key],
    );
    return new Set(held.rows.map((r) => r.objid));
  }

  /** Locks the partition if it is free and raises its fence: the token proves the ownership. */
  async tryAcquire(partition: number): Promise<bigint | undefined> {
    const got = await this.query<{ ok: boolean }>("SELECT pg_try_advisory_lock($1, $2) AS ok", [this.key, partition]);
    if (!got.rows[0]?.ok) return undefined;
    return raiseFence((text, values) => this.query(text, values), this.group, partition);
  }

  async release(partition: number): Promise<void> {
    await this.query("SELECT pg_advisory_unlock($1, $2)", [this.key, partition]);
  }

  /** Leaves the group: unregisters the member and closes the connection (dropping every lock). */
  async close(memberId: string): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    await client.query("DELETE FROM consumer_members WHERE group_name = $1 AND member_id = $2", [this.group, memberId]).catch(() => {});
    await client.end().catch(() => {});
  }
}
