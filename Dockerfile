# Privia in a container: nginx + the FastCGI pool + the WebSocket relay, started by the same
# launcher as `make run`, with the same installer. The data directory is a volume.
#
#   docker build -t privia .
#   docker run -p 8443:8443 -e PRIVIA_SECRET_KEY=$(openssl rand -hex 32) -v privia-data:/var/lib/privia privia

# ---- build: the Swift toolchain, the -dev packages, a release build ---------------------------
FROM swift:6.3.1-bookworm AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/
COPY tests/requirements.txt tests/
RUN scripts/install-deps.sh --build
COPY Package.swift ./
COPY Sources Sources
RUN swift build -c release --static-swift-stdlib \
    && mkdir -p /out/bin \
    && cp .build/release/privia-fcgi .build/release/privia-relay .build/release/privia /out/bin/

# ---- run: runtime libraries, nginx, the binaries, a non-root user ------------------------------
FROM debian:bookworm-slim
WORKDIR /opt/privia
COPY scripts/install-deps.sh scripts/
COPY tests/requirements.txt tests/
RUN scripts/install-deps.sh --runtime \
    && useradd --system --home-dir /var/lib/privia --shell /usr/sbin/nologin privia \
    && mkdir -p /var/lib/privia && chown privia:privia /var/lib/privia
COPY --from=build /out/bin/ /opt/privia/bin/
COPY scripts scripts
COPY nginx nginx
COPY web web
COPY Migrations Migrations

ENV PRIVIA_ENV=production \
    PRIVIA_DATA_DIR=/var/lib/privia \
    PRIVIA_BIN_DIR=/opt/privia/bin \
    PRIVIA_MIGRATIONS_DIR=/opt/privia/Migrations \
    PRIVIA_LISTEN_ADDRESS=0.0.0.0 \
    PRIVIA_HTTPS_PORT=8443 \
    PRIVIA_HTTP_PORT=8080 \
    PATH=/opt/privia/bin:$PATH

USER privia
VOLUME ["/var/lib/privia"]
EXPOSE 8443 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD curl -fsS --cacert /var/lib/privia/tls/cert.pem https://localhost:8443/api/health || exit 1
CMD ["/opt/privia/scripts/privia-stack"]
