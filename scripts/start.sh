#!/usr/bin/env bash
# Quick start: installs npm dependencies if needed, then runs the whole system on its embedded
# default (Postgres, dev PKI, sandbox tenant, SMTP catcher, every service). Arguments go to
# `npm start` (see `bash scripts/start.sh --help`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-deps.sh
exec node --import tsx scripts/start.ts "$@"
