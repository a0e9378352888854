#!/bin/sh
# Dev only: generate the dev PKI, sealing key and passwords (deploy/container/dev-init.ts) and
# load them as the Secrets listed in k8s/required-secrets.yaml. Run from the repository root:
#   sh k8s/overlays/dev/make-secrets.sh [namespace]
set -eu
ns=${1:-pwsync}
dir=${PWSYNC_DEV_SECRETS:-.state/k8s-dev-secrets}
PWSYNC_DEV_SECRETS=$dir PWSYNC_DEV_SERVER_NAMES=ingest,admin,sandbox-tenant,localhost \
  node --import tsx deploy/container/dev-init.ts
password=$(cat "$dir/db/password")
apply() { kubectl -n "$ns" create secret "$@" --dry-run=client -o yaml | kubectl apply -f -; }
apply generic pwsync-db-app \
  --from-literal=uri="postgres://pwsync:${password}@postgres:5432/pwsync" \
  --from-file=password="$dir/db/password"
service_password=$(cat "$dir/db/service-password")
apply generic pwsync-db-service --type=kubernetes.io/basic-auth \
  --from-literal=username=pwsync_service --from-literal=password="$service_password" \
  --from-literal=uri="postgres://pwsync_service:${service_password}@postgres:5432/pwsync"
apply generic pwsync-graph \
  --from-file=client-secret="$dir/sandbox/client-secret" --from-file=ca.crt="$dir/pki/ca.pem"
apply generic pwsync-server-tls \
  --from-file=ca.crt="$dir/pki/ca.pem" --from-file=tls.crt="$dir/pki/server.pem" --from-file=tls.key="$dir/pki/server.key" \
  --from-file=agent-ca.crt="$dir/pki/agent-ca.pem" --from-file=admin-ca.crt="$dir/pki/admin-ca.pem"
set --
for key in "$dir"/keys/*.key.pem; do set -- "$@" --from-file="$key"; done
apply generic pwsync-sealing-keys "$@" --from-file=accepted-key-ids="$dir/ingest/accepted-key-ids"
apply generic pwsync-sandbox-users --from-file=users.json="$dir/sandbox/users.json"
echo "dev secrets applied to namespace $ns (agent certificates: $dir/pki/agents/)"
