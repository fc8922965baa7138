#!/usr/bin/env bash
# Checks that vendor/actix-http is the published actix-http crate plus exactly
# vendor/actix-http.patch: downloads the .crate from crates.io, verifies its checksum (the
# one Cargo.lock had for it), unpacks it, and diffs it against the vendored copy.
#   scripts/check-vendor.sh           check (CI)
#   scripts/check-vendor.sh --write   rewrite vendor/actix-http.patch from the vendored copy
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=3.11.2
SHA256=7926860314cbe2fb5d1f13731e387ab43bd32bca224e82e6e2db85de0a3dba49

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
crate="$work/actix-http-$VERSION.crate"
curl -sSfL -o "$crate" "https://static.crates.io/crates/actix-http/actix-http-$VERSION.crate"
echo "$SHA256  $crate" | sha256sum --check --quiet
tar -xzf "$crate" -C "$work"
mkdir -p "$work/tree"
mv "$work/actix-http-$VERSION" "$work/tree/"
cp -r vendor/actix-http "$work/tree/actix-http"
# The patch names files relative to the two trees, without timestamps.
(cd "$work/tree" && diff -ru "actix-http-$VERSION" actix-http || true) |
  sed -E 's/^((---|\+\+\+) [^\t]+)\t.*/\1/' >"$work/actual.patch"
if [ "${1:-}" = --write ]; then
  cp "$work/actual.patch" vendor/actix-http.patch
  echo "check-vendor: wrote vendor/actix-http.patch"
elif ! diff -u vendor/actix-http.patch "$work/actual.patch"; then
  echo "check-vendor: vendor/actix-http differs from actix-http $VERSION plus vendor/actix-http.patch" >&2
  exit 1
else
  echo "check-vendor: vendor/actix-http is actix-http $VERSION plus vendor/actix-http.patch"
fi
