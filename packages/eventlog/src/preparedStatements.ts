import { createHash } from "node:crypto";
import type pg from "pg";

/**
 * Marks a statement (its text starts with this comment) to be prepared once per connection and
 * then only executed: the multi-stream append and the consumers' batch read cost Postgres more
 * to plan than to run. Only fixed texts may carry it: each distinct text is kept on every
 * connection for the connection's life.
 */
export const PREPARED = "/* prepared */";

const names = new Map<string, string>();

/** A stable name per text (node-pg refuses one name for two texts). */
export function preparedStatementName(text: string): string {
  let name = names.get(text);
  if (!name) {
    name = `pwsync_${createHash("sha256").update(text).digest("hex").slice(0, 24)}`;
    names.set(text, name);
  }
  return name;
}

/** Makes the client run marked statements as named prepared statements; everything else unchanged. */
export function prepareMarkedStatements(client: pg.PoolClient): void {
  const query = client.query as (...args: unknown[]) => unknown;
  client.query = function (this: pg.PoolClient, config: unknown, values?: unknown, callback?: unknown) {
    if (typeof config === "string" && config.startsWith(PREPARED) && (values === undefined || Array.isArray(values)) && callback === undefined)
      return query.call(this, { name: preparedStatementName(config), text: config, values });
    return query.call(this, config, values, callback);
  } as typeof client.query;
}
