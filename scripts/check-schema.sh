#!/usr/bin/env bash
# Checks that src/schema.rs is exactly what `diesel print-schema` produces from migrations/:
# applies every migration to a throwaway PostgreSQL, prints the schema, and diffs it against
# the checked-in file. Exits non-zero, with the diff, when they differ.
#   scripts/check-schema.sh           check (CI)
#   scripts/check-schema.sh --write   regenerate src/schema.rs in place
# Installs diesel_cli $DIESEL_CLI_VERSION (PostgreSQL only) with cargo if ~/.cargo/bin/diesel
# is missing or another version. PG_BINDIR overrides where initdb/pg_ctl are looked for.
set -euo pipefail
cd "$(dirname "$0")/.."

# Keep in step with the diesel version in Cargo.lock (same major.minor; checked below).
DIESEL_CLI_VERSION=2.3.14

mode=check
case "${1:-}" in
  '') ;;
  --write) mode=write ;;
  *) echo "usage: $0 [--write]" >&2; exit 2 ;;
esac

started=$(date +%s)
work=
pg_started=
bindir=
finish() {
  status=$?
  if [ -n "$pg_started" ]; then
    as_db_user "$bindir/pg_ctl" stop -D "$work/data" --mode=fast --wait --silent >/dev/null 2>&1 || true
  fi
  [ -n "$work" ] && rm -rf "$work"
  echo "check-schema: took $(($(date +%s) - started))s"
  exit $status
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# PostgreSQL refuses to run as root: as root, run the server binaries as `postgres`.
as_db_user() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# --- diesel_cli ------------------------------------------------------------------------
locked=$(awk '/^name = "diesel"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ "${locked%.*}" != "${DIESEL_CLI_VERSION%.*}" ]; then
  echo "check-schema: Cargo.lock has diesel $locked but this script pins diesel_cli" \
    "$DIESEL_CLI_VERSION; update DIESEL_CLI_VERSION in $0" >&2
  exit 1
fi
diesel=${CARGO_HOME:-$HOME/.cargo}/bin/diesel
diesel_ok() {
  [ -x "$diesel" ] || return 1
  local out
  out=$("$diesel" --version 2>/dev/null) || return 1
  # diesel --version prints "diesel", then " Version: X.Y.Z" and " Supported Backends: ..."
  grep -Eq "^[[:space:]]*Version: ${DIESEL_CLI_VERSION//./\\.}[[:space:]]*$" <<<"$out" \
    && grep -Eq '^[[:space:]]*Supported Backends:.*\<postgres\>' <<<"$out"
}
if ! diesel_ok; then
  echo "check-schema: installing diesel_cli $DIESEL_CLI_VERSION (PostgreSQL only)"
  t=$(date +%s)
  nice -n 19 cargo install --quiet diesel_cli --version "=$DIESEL_CLI_VERSION" \
    --no-default-features --features postgres --locked --force
  diesel_ok || { echo "check-schema: $diesel is not diesel_cli $DIESEL_CLI_VERSION after install" >&2; exit 1; }
  echo "check-schema: diesel_cli installed in $(($(date +%s) - t))s"
fi

# print-schema pipes its output through `rustfmt` (with our rustfmt.toml) and silently falls
# back to unformatted output when that fails, which would read as a spurious difference.
rustfmt --version >/dev/null 2>&1 || {
  echo "check-schema: rustfmt is not usable here, and diesel print-schema formats its output" \
    "with it (rustup component add rustfmt)" >&2
  exit 1
}

# --- a throwaway PostgreSQL, reachable only through a Unix socket in its own directory ---
if [ -n "${PG_BINDIR:-}" ]; then
  bindir=$PG_BINDIR
else
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -x "$bindir/initdb" ] || bindir=$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")
fi
[ -x "$bindir/initdb" ] && [ -x "$bindir/pg_ctl" ] || {
  echo "check-schema: no PostgreSQL server binaries found (install postgresql, or set PG_BINDIR)" >&2
  exit 1
}
work=$(mktemp -d /tmp/rollcall-schema.XXXXXX)
[ "$(id -u)" -eq 0 ] && chown postgres: "$work"
as_db_user "$bindir/initdb" -D "$work/data" -U rollcall --auth=trust --encoding=UTF8 --no-locale \
  --no-sync >"$work/initdb.log" 2>&1 || { cat "$work/initdb.log" >&2; exit 1; }
cat >>"$work/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$work'
unix_socket_permissions = 0700
fsync = off
EOF
pg_started=1
as_db_user "$bindir/pg_ctl" start -D "$work/data" -l "$work/postgres.log" --wait --timeout=60 --silent \
  || { tail -n 20 "$work/postgres.log" >&2; exit 1; }
"$bindir/createdb" -h "$work" -U rollcall rollcall
url="postgresql://rollcall@/rollcall?host=$work"

# --- migrations, then print-schema ------------------------------------------------------
# The migrations run with an empty config, so a diesel.toml `[print_schema] file` can never
# rewrite src/schema.rs before it is compared; print-schema itself honours diesel.toml.
: >"$work/no-config.toml"
"$diesel" migration run --migration-dir migrations --database-url "$url" \
  --config-file "$work/no-config.toml" >"$work/migrations.log" 2>&1 \
  || { cat "$work/migrations.log" >&2; exit 1; }
"$diesel" print-schema --database-url "$url" >"$work/schema.rs"

regenerate="scripts/check-schema.sh --write"
if [ "$mode" = write ]; then
  if cmp -s "$work/schema.rs" src/schema.rs; then
    echo "check-schema: src/schema.rs is already up to date"
  else
    cp "$work/schema.rs" src/schema.rs
    echo "check-schema: rewrote src/schema.rs"
  fi
elif diff -u --label "src/schema.rs (checked in)" --label "diesel print-schema (from migrations/)" \
  src/schema.rs "$work/schema.rs"; then
  echo "check-schema: src/schema.rs matches diesel print-schema"
else
  echo "src/schema.rs is stale: regenerate with $regenerate" >&2
  echo "(it runs migrations/ on a throwaway database, then diesel_cli $DIESEL_CLI_VERSION's" \
    "print-schema; the file is generated, never edited by hand)" >&2
  exit 1
fi
