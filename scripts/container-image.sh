#!/usr/bin/env bash
# Builds the container image from Dockerfile with a real image builder (podman, i.e. buildah,
# without a daemon or a registry) and runs what was built. Used by .ci/run; as root:
#
#   scripts/container-image.sh
#
# 1. base images, made locally and reused while they exist:
#    - localhost/rollcall-ci/debian:bookworm-slim, bootstrapped with debootstrap from the Debian
#      mirror this machine's apt uses and slimmed as the official debian:bookworm-slim is;
#    - localhost/rollcall-ci/rust:VERSION-KEY, that base plus gcc, libc6-dev, this machine's
#      Rust toolchain and CA certificates (cargo reaches the registry as it does on the host).
#      KEY changes with the toolchain, the certificates, the recipe or the base.
#    The base is made again when it is older than ROLLCALL_BASE_MAX_AGE_DAYS (30), so package
#    updates reach the image; everything built from the old one is then removed.
# 2. podman build of Dockerfile with those as RUST_IMAGE and RUNTIME_IMAGE; the dependency
#    stage is tagged (localhost/rollcall-ci/deps) so that its layers stay cached between runs.
# 3. the image's configuration (podman image inspect): non-root USER, EXPOSE 8080,
#    HEALTHCHECK, ENTRYPOINT, CMD, and its size (at most ROLLCALL_IMAGE_MAX_MB, 150).
# 4. scripts/container-smoke.sh --image: the image's own filesystem and configuration run
#    against a real PostgreSQL.
#
# Needs podman, buildah and debootstrap (.ci/run installs them), rustc on PATH, PostgreSQL's
# server binaries and python3 with ruamel.yaml as $PYTHON (see .ci/run). Heavy steps run
# under `nice -n 19`.
set -euo pipefail
cd "$(dirname "$0")/.."

image=${ROLLCALL_IMAGE:-localhost/rollcall:ci}
suite=bookworm
base_tag=localhost/rollcall-ci/debian:$suite-slim
rust_repo=localhost/rollcall-ci/rust
deps_tag=localhost/rollcall-ci/deps:latest
# Every image made here carries this label, and so does every image built from them: it
# limits the clean-ups below to this script's own images.
label=io.rollcall.ci
max_age_days=${ROLLCALL_BASE_MAX_AGE_DAYS:-30}
max_image_mb=${ROLLCALL_IMAGE_MAX_MB:-150}
podman_build=(nice -n 19 podman build --format docker --isolation=chroot --network=host --pull=never --layers)

[ "$(id -u)" = 0 ] || { echo "image: run as root (debootstrap, podman storage, chroot)" >&2; exit 1; }
for tool in podman buildah debootstrap rustc; do
  command -v "$tool" >/dev/null || { echo "image: $tool is missing (apt-get install podman buildah debootstrap)" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/rollcall-image.XXXXXX")
cleanup() {
  # Never recurse into a directory that still has something mounted under it.
  if grep -q " $work/" /proc/mounts; then echo "image: left $work (still mounted)" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

timings=()
started=$EPOCHREALTIME
# step NAME COMMAND...: runs COMMAND, then prints and records how long it took.
step() {
  local name=$1 start=$EPOCHREALTIME took
  shift
  printf '\n--> image: %s\n' "$name"
  "$@"
  took=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
  printf -- '--> image: %s: %ss\n' "$name" "$took"
  timings+=("$(printf '%-48s %7ss' "$name" "$took")")
}

# apt_uri SUITE: the first URI this machine's apt uses for SUITE (deb822 or one-line sources).
apt_uri() {
  local suite=$1 files=()
  shopt -s nullglob
  files=(/etc/apt/sources.list.d/*.sources)
  [ ${#files[@]} -eq 0 ] || awk -v suite="$suite" 'BEGIN { RS = ""; FS = "\n" }
    {
      types = ""; uris = ""; suites = ""
      for (i = 1; i <= NF; i++) {
        if ($i ~ /^Types:/) types = $i " "
        else if ($i ~ /^URIs:/) uris = $i
        else if ($i ~ /^Suites:/) suites = $i " "
      }
      if (types ~ /[ \t]deb[ \t]/ && suites ~ ("[ \t]" suite "[ \t]")) { split(uris, u, /[ \t]+/); print u[2] }
    }' "${files[@]}"
  files=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list)
  shopt -u nullglob
  for file in "${files[@]}"; do
    [ -f "$file" ] || continue
    # deb [options] URI SUITE COMPONENTS...
    sed -E 's/\[[^]]*\]//' "$file" | awk -v suite="$suite" '$1 == "deb" && $3 == suite { print $2 }'
  done
}
mirror=$(apt_uri "$suite" | head -n 1)
security=$(apt_uri "$suite-security" | head -n 1)
mirror=${mirror:-http://deb.debian.org/debian}
security=${security:-http://deb.debian.org/debian-security}

# slim ROOT: what the official slim image does to a minbase bootstrap: its apt sources,
# no documentation, manual pages or translations (and dpkg told to keep it so), apt's
# caches off, no logs or lists left behind.
slim() {
  local root=$1 dir
  rm -f "$root/etc/apt/sources.list" "$root/etc/resolv.conf" "$root/etc/hostname"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
# A "slim" image: these are not installed, as in the official debian:*-slim images.
path-exclude /usr/share/doc/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
path-include /usr/share/doc/*/copyright
path-include /usr/share/locale/locale.alias
EOF
  echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
# Downloaded packages and the binary caches are deleted after every dpkg run.
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
  echo 'Acquire::GzipIndexes "true";' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
  echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
  for dir in doc groff info linda lintian/overrides locale man; do
    [ -d "$root/usr/share/$dir" ] || continue
    find "$root/usr/share/$dir" -mindepth 1 ! -type d \
      ! -path "$root/usr/share/doc/*/copyright" ! -path "$root/usr/share/locale/locale.alias" -delete
    find "$root/usr/share/$dir" -mindepth 1 -depth -type d -empty -delete
  done
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/var/cache/ldconfig/aux-cache "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old
  find "$root/var/log" -type f -delete
}

base_is_current() {
  podman image exists "$base_tag" || return 1
  local created
  created=$(podman image inspect --format '{{.Created.Unix}}' "$base_tag")
  [ $(($(date +%s) - created)) -lt $((max_age_days * 86400)) ]
}

make_base() {
  local root=$work/rootfs
  echo "image: making $base_tag"
  # Everything built from an older base is stale now: the Rust image, the cached layers.
  podman image prune --all --force --filter "label=$label" >/dev/null
  echo "image: debootstrap --variant=minbase $suite $mirror (security: $security)"
  nice -n 19 debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log"; return 1; }
  slim "$root"
  nice -n 19 tar --numeric-owner -C "$root" -c . | podman import \
    --change "LABEL $label=base" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' --quiet - "$base_tag" >/dev/null
  rm -rf "$root"
}

# The Rust build image, as rust:1-slim-bookworm is made: gcc, libc6-dev, CA certificates and
# the toolchain, here the one installed on this machine (no download) and its certificates.
rust_containerfile() {
  cat <<EOF
FROM $base_tag
RUN apt-get update \\
    && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev \\
    && rm -rf /var/lib/apt/lists/*
COPY ca/ /usr/local/share/ca-certificates/
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY rust/ /usr/local/rust/
LABEL $label=rust
ENV CARGO_HOME=/usr/local/cargo \\
    PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    RUST_VERSION=$rust_version
EOF
}

sysroot=$(rustc --print sysroot)
rust_version=$(rustc -V | cut -d' ' -f2)
ca_bundle=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}

make_rust() {
  local context=$work/rust-context
  echo "image: making $rust_tag from $sysroot"
  mkdir -p "$context/rust/bin" "$context/ca"
  # The toolchain without its documentation (share/) and the tools a build does not run.
  for file in cargo rustc rustdoc; do
    cp -al "$sysroot/bin/$file" "$context/rust/bin/" 2>/dev/null || cp -a "$sysroot/bin/$file" "$context/rust/bin/"
  done
  cp -al "$sysroot/lib" "$context/rust/" 2>/dev/null || cp -a "$sysroot/lib" "$context/rust/"
  cp -L "$ca_bundle" "$context/ca-certificates.crt"
  find /usr/local/share/ca-certificates -name '*.crt' -exec cp -L {} "$context/ca/" \; 2>/dev/null || true
  rust_containerfile >"$context/Containerfile"
  podman image prune --all --force --filter "label=$label=rust" >/dev/null
  "${podman_build[@]}" -t "$rust_tag" -f "$context/Containerfile" "$context" >"$work/rust-image.log" 2>&1 \
    || { tail -n 40 "$work/rust-image.log"; return 1; }
  rm -rf "$context"
}

if base_is_current; then
  echo "image: reusing $base_tag ($(podman image inspect --format '{{.Created}}' "$base_tag"))"
else
  step "base image: debootstrap, slim, import" make_base
fi
base_id=$(podman image inspect --format '{{.Id}}' "$base_tag")

rust_key=$({
  rustc -vV
  sha256sum <"$ca_bundle"
  cat /usr/local/share/ca-certificates/*.crt 2>/dev/null | sha256sum
  rust_containerfile
  echo "$base_id"
} | sha256sum | cut -c1-12)
rust_tag=$rust_repo:$rust_version-$rust_key
if podman image exists "$rust_tag"; then
  echo "image: reusing $rust_tag"
else
  step "Rust build image" make_rust
fi

build_args=(--build-arg "RUST_IMAGE=$rust_tag" --build-arg "RUNTIME_IMAGE=$base_tag")
step "podman build --target deps (dependency layer)" \
  "${podman_build[@]}" "${build_args[@]}" --target deps -t "$deps_tag" -f Dockerfile .
step "podman build (the image)" "${podman_build[@]}" "${build_args[@]}" -t "$image" -f Dockerfile .
# Images of earlier runs, now untagged; tagged images (and so the cached layers under them) stay.
podman image prune --force --filter "label=$label" >/dev/null

check_config() {
  local config size_mb user
  config=$(podman image inspect --format \
    'User={{.Config.User}} ExposedPorts={{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}Entrypoint={{json .Config.Entrypoint}} Cmd={{json .Config.Cmd}} WorkingDir={{.Config.WorkingDir}} Healthcheck={{json .Config.Healthcheck}}' \
    "$image")
  echo "image: $config"
  user=$(podman image inspect --format '{{.Config.User}}' "$image")
  case ${user%%:*} in
    "" | 0 | root) echo "image: FAILED: runs as root (USER '$user')"; return 1 ;;
  esac
  grep -q 'ExposedPorts=8080/tcp ' <<<"$config" || { echo "image: FAILED: does not EXPOSE 8080"; return 1; }
  grep -q 'Entrypoint=\["rollcall"\]' <<<"$config" || { echo "image: FAILED: ENTRYPOINT is not rollcall"; return 1; }
  grep -q '"Test":\["CMD","rollcall","healthcheck"\]' <<<"$config" \
    || { echo "image: FAILED: no HEALTHCHECK running rollcall healthcheck (built without --format docker?)"; return 1; }
  size_mb=$(($(podman image inspect --format '{{.Size}}' "$image") / 1000000))
  echo "image: size ${size_mb} MB ($(podman image inspect --format '{{.Size}}' "$image") bytes); layers:"
  podman history --format '  {{.Size}}\t{{.CreatedBy}}' "$image" | cut -c1-150
  [ "$size_mb" -le "$max_image_mb" ] || { echo "image: FAILED: ${size_mb} MB is more than ${max_image_mb} MB"; return 1; }
}
step "image configuration (podman image inspect)" check_config
step "smoke run (container-smoke.sh --image)" scripts/container-smoke.sh --image "$image"

printf '\nimage: timings\n'
printf '  %s\n' "${timings[@]}"
printf '  %-48s %7ss\n' total "$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')"
podman images --filter "reference=$image" --format 'image: {{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}'
