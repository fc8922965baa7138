#!/usr/bin/env bash
# Runs rollcall the way the container does: the compose file's command and environment
# (DATABASE_URL pointed at a real local PostgreSQL instead of the `db` service, ROLLCALL_BIND's
# port moved to a free one), checks that it refuses to start without ROLLCALL_JWT_SECRET,
# waits until the HEALTHCHECK command passes, checks the logs are JSON, and stops it with
# SIGTERM. Needs python3 with ruamel.yaml as $PYTHON (see .ci/run).
#
#   scripts/container-smoke.sh                 the release binary of this checkout
#   scripts/container-smoke.sh --image IMAGE   a built image (scripts/container-image.sh): as root,
#       its own filesystem (a container created from it, not started, and mounted) and its own
#       configuration: every command runs in that root with `chroot --userspec` as the image's
#       USER, in its WORKDIR, with its ENV under the compose environment, ENTRYPOINT and
#       HEALTHCHECK as inspected. The container runtime is not used to run it (it cannot set
#       resource limits on our CI machines); the host's network is shared, as with
#       `--network=host`.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
image=
if [ "${1:-}" = --image ]; then
  image=${2:?usage: $0 [--image IMAGE]}
else
  bin=target/release/rollcall
  [ -x "$bin" ] || cargo build --release --locked
fi

work=$(mktemp -d /tmp/rollcall-smoke.XXXXXX)
chmod 755 "$work"
pgbin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")
free_port() { "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pg_port=$(free_port)
app_port=$(free_port)
as_db_user() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$work"
server_pid=
container=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  as_db_user "$pgbin/pg_ctl" -D "$work/pg" -m fast -w stop >/dev/null 2>&1 || true
  if [ -n "$container" ]; then podman rm --force "$container" >/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ -n "$image" ]; then
  # The image's configuration, as shell variables.
  podman image exists "$image" || { echo "smoke: FAILED: no image $image"; exit 1; }
  image_user='' image_workdir='' image_env=() entrypoint=() healthcheck=()
  eval "$(podman image inspect "$image" | "$python" -c '
import json, shlex, sys
inspected = json.load(sys.stdin)[0]
config = inspected["Config"]
def array(name, items):
    print(name + "=(" + " ".join(shlex.quote(item) for item in items) + ")")
# podman shows the (Docker-format) HEALTHCHECK beside the OCI configuration, not in it.
health = inspected.get("Healthcheck") or config.get("Healthcheck") or {}
test = health.get("Test") or ["NONE"]
if test[0] == "CMD-SHELL":
    test = ["CMD", "/bin/sh", "-c", test[1]]
print("image_user=" + shlex.quote(config.get("User") or "0"))
print("image_workdir=" + shlex.quote(config.get("WorkingDir") or "/"))
array("image_env", config.get("Env") or [])
array("entrypoint", config.get("Entrypoint") or [])
array("healthcheck", test[1:] if test[0] == "CMD" else [])
')"
  [ ${#healthcheck[@]} -gt 0 ] || { echo "smoke: FAILED: $image has no HEALTHCHECK"; exit 1; }
  # Never started: no timer for its HEALTHCHECK (run below by hand).
  container=$(podman create --pull=never --no-healthcheck "$image")
  root=$(podman mount "$container")
  # USER is uid[:gid] or a name, resolved in the image's own /etc/passwd and /etc/group.
  lookup() { awk -F: -v key="$2" '$1 == key || $3 == key { print $3; exit }' "$root/etc/$1"; }
  uid=$(lookup passwd "${image_user%%:*}")
  uid=${uid:-${image_user%%:*}}
  if [[ $image_user == *:* ]]; then
    gid=$(lookup group "${image_user#*:}")
    gid=${gid:-${image_user#*:}}
  else
    gid=$(awk -F: -v uid="$uid" '$3 == uid { print $4; exit }' "$root/etc/passwd")
    gid=${gid:-0}
  fi
  [[ $uid =~ ^[0-9]+$ && $gid =~ ^[0-9]+$ ]] || { echo "smoke: FAILED: cannot resolve USER $image_user"; exit 1; }
  chroot=$(command -v chroot)
  echo "smoke: image $image, container $(cut -c1-12 <<<"$container") mounted at $root"
  echo "smoke: running as $uid:$gid (USER $image_user) in $image_workdir: ${entrypoint[*]}; healthcheck: ${healthcheck[*]}"
else
  entrypoint=("$bin")
  healthcheck=("$bin" healthcheck)
fi

# as_container [VAR=VALUE...] COMMAND...: sets `cmd` to the command line that runs COMMAND as
# the container would (with those variables added to its environment).
as_container() {
  local extra=()
  while [[ ${1:-} == [A-Za-z_]*=* ]]; do extra+=("$1"); shift; done
  if [ -n "$image" ]; then
    cmd=(env -i "${container_env[@]}" "${extra[@]}" "$chroot" --userspec="$uid:$gid" --groups="$gid" "$root"
      /usr/bin/env -C "$image_workdir" "$@")
  else
    cmd=(env "${extra[@]}" "$@")
  fi
}

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
compose_env=$("$python" scripts/compose_env.py docker-compose.yml app)
eval "$compose_env"
export DATABASE_URL=${DATABASE_URL/@db:5432/@127.0.0.1:$pg_port}
export ROLLCALL_BIND=${ROLLCALL_BIND/:8080/:$app_port}
if [ -n "$image" ]; then
  # The container's environment: the image's ENV, then the compose file's on top.
  container_env=("${image_env[@]}")
  while read -r name; do
    container_env+=("$name=${!name}")
  done < <(sed -n 's/^export \([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' <<<"$compose_env")
else
  # The image's working directory and data directory.
  export ROLLCALL_DATA_DIR=$work/data
fi

echo "smoke: the server itself refuses to start without ROLLCALL_JWT_SECRET"
# shellcheck disable=SC2086
as_container ROLLCALL_JWT_SECRET='' "${entrypoint[@]}" $COMMAND
timeout 60 "${cmd[@]}" >"$work/refusal" 2>&1 && code=0 || code=$?
case $code in
  0 | 124) echo "smoke: FAILED: the server started without ROLLCALL_JWT_SECRET"; cat "$work/refusal"; exit 1 ;;
esac
grep -q ROLLCALL_JWT_SECRET "$work/refusal" || { echo "smoke: FAILED: unclear refusal:"; cat "$work/refusal"; exit 1; }
sed 's/^/smoke:   /' "$work/refusal"

if [ -n "$image" ]; then
  echo "smoke: every library of ${entrypoint[0]} is in the image"
  # shellcheck disable=SC2016
  as_container /bin/sh -c 'ldd "$(command -v "$0")"' "${entrypoint[0]}"
  "${cmd[@]}" >"$work/ldd" 2>&1 || { cat "$work/ldd"; exit 1; }
  if grep -q 'not found' "$work/ldd"; then echo "smoke: FAILED: missing libraries:"; cat "$work/ldd"; exit 1; fi
fi

echo "smoke: ${entrypoint[*]} $COMMAND (ROLLCALL_BIND=$ROLLCALL_BIND, ROLLCALL_LOG_FORMAT=$ROLLCALL_LOG_FORMAT)"
# shellcheck disable=SC2086
as_container "${entrypoint[@]}" $COMMAND
"${cmd[@]}" >"$work/app.log" 2>&1 &
server_pid=$!

as_container "${healthcheck[@]}"
health=("${cmd[@]}")
for _ in $(seq 120); do
  if "${health[@]}" 2>/dev/null; then break; fi
  kill -0 "$server_pid" 2>/dev/null || { echo "smoke: FAILED: the server exited"; cat "$work/app.log"; exit 1; }
  sleep 0.5
done
"${health[@]}" || { echo "smoke: FAILED: never ready"; cat "$work/app.log"; exit 1; }
echo "smoke: ready; the HEALTHCHECK command (${healthcheck[*]}) passes"
if [ -n "$image" ]; then
  running_as=$(awk '/^Uid:/ { print $2 }' "/proc/$server_pid/status")
  [ "$running_as" = "$uid" ] || { echo "smoke: FAILED: the server runs as uid $running_as, not $uid"; exit 1; }
  echo "smoke: the server runs as uid $running_as"
fi
"$python" -c '
import json, sys
lines = [line for line in open(sys.argv[1]) if line.strip()]
assert lines, "no log lines"
for line in lines:
    json.loads(line)
print(f"smoke: {len(lines)} log lines, all JSON; first: {lines[0].strip()[:160]}")
' "$work/app.log" || { echo "smoke: FAILED: logs are not JSON"; cat "$work/app.log"; exit 1; }

kill -TERM "$server_pid"
wait "$server_pid" && code=0 || code=$?
server_pid=
[ "$code" = 0 ] || { echo "smoke: FAILED: exit status $code after SIGTERM"; cat "$work/app.log"; exit 1; }
tail -n 1 "$work/app.log" | sed 's/^/smoke: last log line: /' | cut -c1-200
echo "smoke: passed (refuses without a secret, ready, healthcheck ok, JSON logs, clean SIGTERM)"
