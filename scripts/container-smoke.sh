#!/usr/bin/env bash
# Runs the release binary the way the container image does: the compose file's command and
# environment (DATABASE_URL pointed at a real local PostgreSQL instead of the `db` service,
# ROLLCALL_BIND's port moved to a free one), waits for /readyz, runs the image's HEALTHCHECK
# command, and stops it with SIGTERM. Needs python3 with ruamel.yaml (see .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
bin=target/release/rollcall
[ -x "$bin" ] || cargo build --release --locked

work=$(mktemp -d /tmp/rollcall-smoke.XXXXXX)
chmod 755 "$work"
pgbin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")
free_port() { "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pg_port=$(free_port)
app_port=$(free_port)
as_db_user() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$work"
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  as_db_user "$pgbin/pg_ctl" -D "$work/pg" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "smoke: starting PostgreSQL on 127.0.0.1:$pg_port"
as_db_user "$pgbin/initdb" -D "$work/pg" -U rollcall --auth=trust -E UTF8 --no-locale >/dev/null
as_db_user "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $work" start >/dev/null
"$pgbin/psql" -q -h 127.0.0.1 -p "$pg_port" -U rollcall -d postgres -c 'CREATE DATABASE rollcall'

echo "smoke: compose refuses to start without ROLLCALL_JWT_SECRET"
if ROLLCALL_JWT_SECRET= "$python" scripts/compose_env.py docker-compose.yml app >/dev/null 2>"$work/refusal"; then
  echo "smoke: FAILED: an unset ROLLCALL_JWT_SECRET was accepted"; exit 1
fi
grep -q ROLLCALL_JWT_SECRET "$work/refusal"

export ROLLCALL_JWT_SECRET=smoke-test-secret-of-more-than-32-chars
eval "$("$python" scripts/compose_env.py docker-compose.yml app)"
export DATABASE_URL=${DATABASE_URL/@db:5432/@127.0.0.1:$pg_port}
export ROLLCALL_BIND=${ROLLCALL_BIND/:8080/:$app_port}
# The image's working directory and data directory.
export ROLLCALL_DATA_DIR=$work/data
echo "smoke: rollcall $COMMAND (ROLLCALL_BIND=$ROLLCALL_BIND, ROLLCALL_LOG_FORMAT=$ROLLCALL_LOG_FORMAT)"
# shellcheck disable=SC2086
"$bin" $COMMAND >"$work/app.log" 2>&1 &
server_pid=$!

for _ in $(seq 120); do
  if "$bin" healthcheck 2>/dev/null; then break; fi
  kill -0 "$server_pid" 2>/dev/null || { echo "smoke: FAILED: the server exited"; cat "$work/app.log"; exit 1; }
  sleep 0.5
done
"$bin" healthcheck || { echo "smoke: FAILED: never ready"; cat "$work/app.log"; exit 1; }
head -n 1 "$work/app.log" | "$python" -c 'import json, sys; json.loads(sys.stdin.readline())' \
  || { echo "smoke: FAILED: logs are not JSON"; exit 1; }

kill -TERM "$server_pid"
wait "$server_pid" && code=0 || code=$?
server_pid=
[ "$code" = 0 ] || { echo "smoke: FAILED: exit status $code after SIGTERM"; exit 1; }
echo "smoke: passed (ready, healthcheck ok, JSON logs, clean SIGTERM)"
