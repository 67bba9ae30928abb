# The hoptrace image: the collector (with its UI) and the demo services.
#   docker build -t hoptrace .
#   docker run -p 4400:4400 -v hoptrace-data:/data hoptrace
FROM node:24-slim

WORKDIR /app

# Dependencies first, so a source change does not reinstall them. Dev
# dependencies stay: the UI build needs vite, and the demo services need
# amqplib and @opentelemetry/api (peer dependencies of the library).
COPY package.json package-lock.json ./
# The collector package is an npm workspace of the repository: npm ci needs its manifest.
COPY packages/collector/package.json packages/collector/
# --ignore-scripts: the root's `prepare` builds the library from sources not copied yet (npm run build does it below).
RUN npm ci --no-audit --no-fund --ignore-scripts

COPY . .
# The library to dist/src, the UI to the directory the collector serves (and the collector
# package to packages/collector/dist); the image runs the collector from its TypeScript source.
RUN npm run build \
 && chmod +x bin/hoptrace.js \
 && ln -s /app/bin/hoptrace.js /usr/local/bin/hoptrace \
 && mkdir -p /data \
 && chown node:node /data

ENV NODE_ENV=production \
    HOPTRACE_DB=/data/hoptrace.db

# The node image's unprivileged user; /data is its own, so a named volume mounted there is writable.
USER node
VOLUME ["/data"]
EXPOSE 4400

HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=5 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:4400/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

CMD ["hoptrace", "collector", "--host", "0.0.0.0", "--port", "4400", "--db", "/data/hoptrace.db"]
