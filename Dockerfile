# syntax=docker/dockerfile:1
# Sesame's container image: `sesamed` (and the `sesame` CLI) on Debian slim, as a non-root user,
# fit for a read-only root filesystem (everything it writes goes to /var/lib/sesame).
#
#   docker build -t sesame .                      # compiles in the image (release, ~15 min on 2 cores)
#   docker build --target prebuilt -t sesame .    # copies target/release/{sesamed,sesame} instead,
#                                                 # for CI after `cargo build --release` (BuildKit)
#   podman build --format docker -t sesame .      # podman: the docker format keeps the HEALTHCHECK
#
#   docker run --read-only -p 8080:8080 -v sesame-data:/var/lib/sesame \
#     -e SESAME_MASTER_KEY="$(openssl rand -base64 32)" \
#     -e SESAME_PUBLIC_URL=http://localhost:8080 sesame
#
# See docs/production.md for the master key, PostgreSQL and TLS.

ARG RUST_VERSION=1.88
ARG DEBIAN=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p sesame-server -p sesame-cli \
    && install -D -m 0755 target/release/sesamed target/release/sesame -t /out

FROM debian:${DEBIAN}-slim AS base
# ca-certificates: outbound TLS (SSO identity providers, outside JWKS, back-channel logout).
# Not pinned: it is the trust store, and the newest one of the release is the one wanted.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/sesame --shell /usr/sbin/nologin sesame \
    && install -d -o sesame -g sesame -m 0700 /var/lib/sesame
ENV SESAME_LISTEN=0.0.0.0:8080 \
    SESAME_DATA_DIR=/var/lib/sesame \
    SESAME_LOG_FORMAT=json
VOLUME ["/var/lib/sesame"]
EXPOSE 8080
USER 10001:10001
WORKDIR /var/lib/sesame
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["sesamed", "probe", "--url", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["sesamed"]
CMD ["serve"]

# The binaries of a `cargo build --release` on a glibc as old as bookworm's (2.36) or older.
FROM base AS prebuilt
COPY --chmod=0755 target/release/sesamed target/release/sesame /usr/local/bin/

# The default target: compiled above.
FROM base AS runtime
COPY --from=build /out/sesamed /out/sesame /usr/local/bin/
