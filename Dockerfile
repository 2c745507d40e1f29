# Tokenwarden as a container image: `docker build -t tokenwarden .`
# (See README, "Deploying". This file is not built by this project's CI, which has no
# container engine; CI runs deploy/build-release.sh and the health check instead.)

# Node.js 22: its node:sqlite needs no compiler, so better-sqlite3 is left out.
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json .npmrc ./
COPY tsconfig.json tsconfig.build.json LICENSE README.md ./
COPY src ./src
COPY public ./public
COPY presets ./presets
COPY deploy ./deploy
RUN sh deploy/build-release.sh /src /opt/tokenwarden

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    TOKENWARDEN_HOST=0.0.0.0 \
    TOKENWARDEN_PORT=4180 \
    TOKENWARDEN_DATABASE_URL=sqlite:/data/tokenwarden.db
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin tokenwarden \
 && mkdir -p /data && chown tokenwarden:tokenwarden /data && chmod 0700 /data
COPY --from=build /opt/tokenwarden /opt/tokenwarden
USER tokenwarden
WORKDIR /data
# The SQLite database and its key file (when TOKENWARDEN_SECRET_KEY is not given).
VOLUME ["/data"]
EXPOSE 4180
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "/opt/tokenwarden/deploy/healthcheck.mjs"]
# serve handles SIGTERM itself: requests and refreshes in flight finish, then it exits.
ENTRYPOINT ["node", "/opt/tokenwarden/dist/cli/main.js"]
CMD ["serve"]
