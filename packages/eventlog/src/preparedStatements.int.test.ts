import { createTestDatabase } from "@pwsync/testkit";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openEventLog, type EventLog } from "./open.js";
import { PREPARED, preparedStatementName } from "./preparedStatements.js";

let log: EventLog;
beforeAll(async () => {
  // One connection, so the statements below and the look at pg_prepared_statements share it.
  log = await openEventLog(await createTestDatabase("prepared"), { maxConnections: 1 });
});
afterAll(() => log.close());

async function preparedOnConnection(): Promise<string[]> {
  const rows = await sql<{ name: string }>`SELECT name FROM pg_prepared_statements ORDER BY name`.execute(log.db);
  return rows.rows.map((r) => r.name);
}

describe("prepared statements", () => {
  it("prepares a marked statement once per connection and reuses it; unmarked ones are not kept", async () => {
    const marked = (n: number) => sql<{ n: number }>`${sql.raw(PREPARED)} SELECT ${n}::int + 1 AS n`.execute(log.db);
    expect((await marked(1)).rows[0]!.n).toBe(2);
    expect((await marked(41)).rows[0]!.n).toBe(42);
    await sql`SELECT ${1}::int AS unmarked`.execute(log.db);
    const text = `${PREPARED} SELECT $1::int + 1 AS n`;
    expect(await preparedOnConnection()).toEqual([preparedStatementName(text)]);
    // Inside a transaction too (the partition worker's commits).
    await log.db.transaction().execute(async (trx) => {
      const result = await sql<{ n: number }>`${sql.raw(PREPARED)} SELECT ${7}::int + 1 AS n`.execute(trx);
      expect(result.rows[0]!.n).toBe(8);
    });
    expect(await preparedOnConnection()).toEqual([preparedStatementName(text)]);
  });

  it("names two texts differently and one text the same every time", () => {
    expect(preparedStatementName("/* prepared */ SELECT 1")).toBe(preparedStatementName("/* prepared */ SELECT 1"));
    expect(preparedStatementName("/* prepared */ SELECT 1")).not.toBe(preparedStatementName("/* prepared */ SELECT 2"));
  });
});
