import type pg from "pg";

const ROLE = /^[a-z_][a-z0-9_]{0,62}$/;

function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * Least privilege for the services (run by the schema owner, after migrating): `role` may read
 * and write rows, never DDL. Not owning the tables, it cannot ALTER/DROP or disable the
 * append-only triggers on `events` (only an owner or superuser can), nor TRUNCATE; and UPDATE /
 * DELETE on `events` are not even granted, so the triggers are the second wall, not the only
 * one. Services still run the migrator at start: with nothing pending it only reads, and a
 * pending migration fails loudly ("permission denied") instead of running with the wrong role.
 * Idempotent: re-run it after every migration (new tables need their grants).
 */
export async function grantServiceRole(pool: pg.Pool, role: string): Promise<void> {
  if (!ROLE.test(role)) throw new Error(`service role ${JSON.stringify(role)} is not a plain role name`);
  await pool.query(`GRANT USAGE ON SCHEMA public TO ${role}`);
  await pool.query(`REVOKE CREATE ON SCHEMA public FROM ${role}`);
  await pool.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}`);
  await pool.query(`REVOKE UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES ON events FROM ${role}`);
  // Derived from events by the append trigger (which writes as the owner): read-only to services.
  await pool.query(`REVOKE INSERT, UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES ON change_states, change_state_counts FROM ${role}`);
  await pool.query(`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${role}`);
}

/**
 * Creates (or updates the password of) a login role for the services: no superuser, no role or
 * database creation, no replication, no bypassing row security. Dev and test launchers use it;
 * production creates the role in its own tooling (docs/deploy.md).
 */
export async function ensureServiceRole(pool: pg.Pool, role: string, password: string): Promise<void> {
  if (!ROLE.test(role)) throw new Error(`service role ${JSON.stringify(role)} is not a plain role name`);
  const exists = await pool.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [role]);
  const attributes = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS";
  await pool.query(`${exists.rowCount ? "ALTER" : "CREATE"} ROLE ${role} ${attributes} PASSWORD ${quoteLiteral(password)}`);
}
