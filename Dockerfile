# Cairn image: one `cairn` binary; the role is the command (`storage`, `insert`, `select`).
#
#   docker build -t cairn:local .
#   docker run --rm cairn:local storage --help
#
# Needs a registry (the official Rust and Debian images). Without one, build the binary on
# the host and use deploy/build-image-offline.sh (deploy/Dockerfile.offline) instead; both
# images have the same layout: /usr/local/bin/cairn, user 10001, /data, /bin/busybox for
# health probes.

# ---- build: the release binary (RocksDB compiles from source, ~20 min on 2 cores) ----
FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang libclang-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin cairn \
 && cp target/release/cairn /usr/local/bin/cairn

# ---- runtime: slim Debian, non-root ----
FROM debian:bookworm-slim
# busybox-static gives the health probe `busybox wget` (same path as the offline image).
RUN apt-get update \
 && apt-get install -y --no-install-recommends busybox-static \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 cairn \
 && useradd --system --uid 10001 --gid cairn --home-dir /data --shell /usr/sbin/nologin cairn \
 && mkdir -p /data && chown cairn:cairn /data
COPY --from=build /usr/local/bin/cairn /usr/local/bin/cairn
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
# Two malloc arenas instead of glibc's 8 per core: the same CPU, ~20 MB less RSS per
# storage node under ingestion (docs/benchmarks.md).
ENV MALLOC_ARENA_MAX=2
# 8400 storage gRPC, 8480 insert, 8481 select, 8482 storage HTTP.
EXPOSE 8400 8480 8481 8482
ENTRYPOINT ["/usr/local/bin/cairn"]
CMD ["--help"]
# No HEALTHCHECK here: the HTTP port depends on the role. docker-compose.yml and k8s/ probe
# GET /health on each role's port (`busybox wget -q -O /dev/null http://127.0.0.1:PORT/health`).
