import { randomBytes } from "node:crypto";
import pg from "pg";
import { inject } from "vitest";

export { freePort } from "@pwsync/local-postgres";

/** A fresh, empty database on the test run's PostgreSQL server. */
export async function createTestDatabase(prefix = "t"): Promise<string> {
  const port = inject("postgresPort");
  const name = `${prefix}_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client(`postgres://postgres:pwsync-local@127.0.0.1:${port}/postgres`);
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return `postgres://postgres:pwsync-local@127.0.0.1:${port}/${name}`;
}

/**
 * Polls until `check` returns a truthy value (or throws after `timeoutMs`, naming `what`). The default bound is generous on purpose: a condition
 * that holds returns at once, and on a 2-core machine busy with other work a process start or
 * a ready line can take tens of seconds (a bound too tight fails healthy code).
 */
export async function eventually<T>(what: string, check: () => Promise<T | undefined | null | false>, timeoutMs = 90_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export { startRestartablePostgres, type RestartablePostgres } from "./restartable-postgres.js";
