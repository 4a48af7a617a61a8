# fave-orchestrator as an OpenFaaS function.
#
# of-watchdog (mode=http) owns port 8080, the health/readiness endpoints and the timeouts; it
# forwards every request to `fave serve` on 127.0.0.1:3000, which runs the same router as
# src/handler.ts (the Node template entry). `fave serve` is used instead of the template's
# Express wrapper so the image carries one HTTP stack: its own 1 MiB body limit with JSON 413s,
# and a SIGTERM drain that leaves running requests resumable. Every outside caller reaches that
# loopback server, so `--require-auth` makes it refuse to start without API tokens (the
# fave-api-tokens secret or FAVE_API_TOKENS) unless FAVE_ANONYMOUS_ROLE grants a role on purpose.
#
# Build:  docker build -t <registry>/fave-orchestrator:<tag> .
# Deploy: faas-cli deploy -f stack.yml   (see docs/deploy.md)
#
# test/image/rehearse.ts (run by .ci/run) repeats the build stage's commands without Docker and
# checks they are still the ones below: change them together.

ARG NODE_VERSION=22
ARG WATCHDOG_VERSION=0.10.1

FROM --platform=${TARGETPLATFORM:-linux/amd64} ghcr.io/openfaas/of-watchdog:${WATCHDOG_VERSION} AS watchdog

FROM --platform=${TARGETPLATFORM:-linux/amd64} node:${NODE_VERSION}-alpine AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Optional packages are the embedded stages' ffmpeg/onnx binaries: the function reaches the
# stages through the gateway (GATEWAY_URL), so they stay out of the image.
RUN npm ci --omit=optional --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
# The pages' browser scripts are bundled with esbuild-wasm (a dev dependency, pruned after).
RUN npx tsc -p tsconfig.build.json \
    && node scripts/bundle-browser.mjs \
    && npm prune --omit=dev --omit=optional --no-audit --no-fund \
    && npm cache clean --force

FROM --platform=${TARGETPLATFORM:-linux/amd64} node:${NODE_VERSION}-alpine AS ship
RUN apk add --no-cache ca-certificates \
    && addgroup -S app && adduser -S -G app -h /home/app app
COPY --from=watchdog /fwatchdog /usr/bin/fwatchdog
WORKDIR /home/app
COPY --from=build --chown=app:app /src/package.json ./package.json
COPY --from=build --chown=app:app /src/node_modules ./node_modules
COPY --from=build --chown=app:app /src/dist ./dist
USER app

ENV NODE_ENV=production \
    fprocess="node dist/cli/main.js serve --port 3000 --host 127.0.0.1 --require-auth" \
    mode=http \
    upstream_url=http://127.0.0.1:3000 \
    ready_path=/healthz \
    prefix_logs=false \
    exec_timeout=3600s \
    read_timeout=60s \
    write_timeout=3605s \
    healthcheck_interval=5s \
    FAVE_STORE=s3

EXPOSE 8080
HEALTHCHECK --interval=5s CMD [ -e /tmp/.lock ] || exit 1
CMD ["fwatchdog"]
