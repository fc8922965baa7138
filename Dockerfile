# syntax=docker/dockerfile:1
# The base images are build arguments only so that CI can build from local copies of them
# (scripts/container-image.sh); everyone else gets these official defaults.
ARG RUST_IMAGE=rust:1-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# Toolchain: the Rust image plus libpq headers.
FROM ${RUST_IMAGE} AS toolchain
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src

# Planner: reduce the source tree to what the dependency build depends on: the manifests,
# Cargo.lock, cargo's own configuration, the vendored dependencies (vendor/, whole), and a
# stub at the path of every target. Cargo itself
# lists the targets (lib, bins, benches, tests, examples, build scripts, declared in Cargo.toml
# or discovered), so no list kept here can drift from Cargo.toml: a new [[bench]] gets its stub
# like any other. One timestamp on every file makes the result depend on content only: the
# dependency layer below is rebuilt when a manifest or Cargo.lock changes or a target is added
# or removed, not when a source file is edited.
FROM toolchain AS planner
SHELL ["/bin/bash", "-euo", "pipefail", "-c"]
COPY . .
RUN mkdir /skeleton \
    && cargo metadata --no-deps --offline --format-version 1 >/tmp/metadata.json \
    && cp --parents Cargo.toml Cargo.lock /skeleton/ \
    && for config in .cargo rust-toolchain rust-toolchain.toml vendor; do \
        if [ -e "$config" ]; then cp -a --parents "$config" /skeleton/; fi; \
    done \
    && grep -o '"manifest_path":"[^"]*"' /tmp/metadata.json | cut -d'"' -f4 | while read -r manifest; do \
        cp --parents "${manifest#/src/}" /skeleton/; \
    done \
    && grep -o '"src_path":"[^"]*"' /tmp/metadata.json | cut -d'"' -f4 | while read -r target; do \
        mkdir -p "/skeleton/$(dirname "${target#/src/}")" \
        && printf '#![allow(dead_code)]\nfn main() {}\n' >"/skeleton/${target#/src/}"; \
    done \
    && find /skeleton -exec touch -h -d @0 {} +

# Dependencies, in their own layer, built from the skeleton alone.
FROM toolchain AS deps
COPY --from=planner /skeleton/ ./
RUN cargo build --release --locked

# Build: the real tree on top.
FROM deps AS build
COPY . .
# The stubs were compiled after the checkout's timestamps: touch the real files so that cargo
# rebuilds every crate of this repository instead of keeping the stubs' output (not vendor/,
# whose real files the dependency layer was built from).
RUN find . \( -path ./target -o -path ./vendor \) -prune -o -type f -exec touch {} + \
    && cargo build --release --locked

# Runtime stage: only libpq and CA certificates.
FROM ${RUNTIME_IMAGE}
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
