# syntax=docker/dockerfile:1
# Build stage: the Rust toolchain and libpq headers.
FROM rust:1-slim-bookworm AS build
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, in their own layer: a change to src/ does not rebuild every crate.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY migrations migrations
COPY src src
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

# Runtime stage: only libpq and CA certificates.
FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 rollcall \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /var/lib/rollcall rollcall
COPY --from=build /src/target/release/rollcall /usr/local/bin/rollcall
USER 10001:10001
WORKDIR /var/lib/rollcall
ENV ROLLCALL_BIND=0.0.0.0:8080 \
    ROLLCALL_DATA_DIR=/var/lib/rollcall \
    ROLLCALL_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["rollcall", "healthcheck"]
ENTRYPOINT ["rollcall"]
CMD ["serve"]
