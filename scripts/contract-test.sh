#!/usr/bin/env bash
# Contract test: starts rollcall on a fresh embedded database with the demo data, and runs
# schemathesis against the live OpenAPI document once per role (admin, teacher, student),
# with schemathesis' default checks. Exits non-zero on any failure. The operations that end
# the session the run is using, or lock or reset the demo accounts the next role logs in
# with (logout, ending a session, a password change, disabling or resetting a user), and
# deleting a lesson (the demo lesson the next role works on), are left out here; black-box
# tests in tests/api/accounts.rs and tests/api/timetable/ cover them.
#   SCHEMATHESIS=path/to/schemathesis  (default: schemathesis on PATH)
#   CONTRACT_EXAMPLES=N                (examples per operation and role; default 25)
set -euo pipefail
cd "$(dirname "$0")/.."
schemathesis=${SCHEMATHESIS:-schemathesis}
examples=${CONTRACT_EXAMPLES:-25}
bin=target/debug/rollcall
[ -x "$bin" ] || cargo build --locked

work=$(mktemp -d /tmp/rollcall-contract.XXXXXX)
chmod 755 "$work"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

ROLLCALL_DATA_DIR="$work/data" ROLLCALL_BIND="127.0.0.1:$port" RUST_LOG=warn \
  "$bin" serve --demo >"$work/demo.txt" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 120); do
  "$bin" healthcheck --url "$base" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; exit 1; }
  sleep 0.5
done

token() {
  curl -fsS -X POST "$base/api/v1/auth/login" -H 'Content-Type: application/json' \
    -d "{\"username\": \"$1\", \"password\": \"$2\"}" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}
# Every role logs in before any run: a run's fuzzed logins may name the next role's demo
# account with wrong passwords, and the login throttle would then refuse it (429).
declare -A tokens=(
  [admin]=$(token demo.admin demo-admin-pw)
  [teacher]=$(token demo.teacher demo-teacher-pw)
  [student]=$(token demo.student01 demo-student-pw)
)
status=0
for role in admin teacher student; do
  auth=${tokens[$role]}
  echo "contract: schemathesis as $role"
  "$schemathesis" --config-file scripts/schemathesis.toml run "$base/api-docs/openapi.json" \
    --header "Authorization: Bearer $auth" \
    --max-examples "$examples" \
    --exclude-operation-id logout \
    --exclude-operation-id end_my_session \
    --exclude-operation-id change_my_password \
    --exclude-operation-id update_user \
    --exclude-operation-id create_activation \
    --exclude-operation-id delete_lesson \
    || status=1
done
if [ $status -ne 0 ]; then
  echo "contract: FAILED (server log tail below)"; tail -n 30 "$work/server.log"
fi
exit $status
