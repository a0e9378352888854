#!/bin/sh
# Runs once, when the Postgres volume is first initialised: the read-only login Grafana uses.
# Its grants on the audit tables come from the `migrate` service (the tables do not exist yet).
set -eu
ro_password=$(cat "${PWSYNC_READONLY_PASSWORD_FILE:-/run/pwsync/db/readonly-password}")
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -v ro_password="$ro_password" <<'SQL'
CREATE ROLE pwsync_readonly LOGIN PASSWORD :'ro_password';
GRANT CONNECT ON DATABASE pwsync TO pwsync_readonly;
GRANT USAGE ON SCHEMA public TO pwsync_readonly;
SQL
