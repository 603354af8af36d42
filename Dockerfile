# syntax=docker/dockerfile:1
# The ruleperf query service image; the same image runs its CLIs (migrate, generate,
# refresh) in docker-compose.yml. TypeScript runs through tsx, a runtime dependency,
# so there is no compile step: the build stage only installs production dependencies.

# Node.js LTS, pinned to a release (bump deliberately; tests check it stays pinned).
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

# Stage 1: production dependencies from the lockfile. The Grafana plugin toolchain
# (devDependencies) never enters the image; install scripts are not needed.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# Stage 2: runtime, as the unprivileged `node` user of the official image.
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080
WORKDIR /app
COPY --from=deps --chown=node:node /app/node_modules ./node_modules
COPY --chown=node:node package.json tsconfig.json ./
COPY --chown=node:node server ./server
COPY --chown=node:node sql ./sql
# The cache warmer replays the provisioned dashboards' queries.
COPY --chown=node:node provisioning/dashboards ./provisioning/dashboards
# DATA_DIR for the embedded database when the image runs without DATABASE_URL.
RUN mkdir -p /app/.data && chown node:node /app/.data
USER node
EXPOSE 8080
# node itself is PID 1 (not npm), so SIGTERM reaches the service's graceful shutdown.
CMD ["node", "--import", "tsx", "server/main.ts"]
