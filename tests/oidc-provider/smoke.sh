#!/usr/bin/env bash
# End-to-end check of the test OpenID provider, the way a relying party and a browser use it:
# discovery, authorization code flow with PKCE S256, state and nonce, the login form (wrong
# password, then the right one), the redirect to the client, the token exchange with the client
# secret, the ID token's signature (against the JWKS) and claims, userinfo, cancel →
# access_denied, and the provider stopping on stdin EOF and on SIGTERM.
#
# Needs bash, curl, python3 (standard library only), node and npm.
#   tests/oidc-provider/smoke.sh                     # npm ci into a fresh temp copy, cache-less
#   SMOKE_REUSE_NODE_MODULES=1 tests/oidc-provider/smoke.sh   # use tests/oidc-provider/node_modules
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/oidc-smoke.XXXXXX")
provider_pid=
cleanup() {
  exec 3>&- 2>/dev/null || true
  if [ -n "$provider_pid" ] && kill -0 "$provider_pid" 2>/dev/null; then kill "$provider_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

passed=0
failed=0
ok() { passed=$((passed + 1)); printf '  ok   %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf '  FAIL %s\n' "$*"; }
check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}
die() { printf 'smoke: %s\n' "$*" >&2; [ -f "$tmp/provider.err" ] && sed 's/^/  provider: /' "$tmp/provider.err" >&2; exit 1; }
now_ms() { date +%s%3N; }

command -v node >/dev/null || die "node is not installed"
command -v npm >/dev/null || die "npm is not installed"
command -v curl >/dev/null || die "curl is not installed"
command -v python3 >/dev/null || die "python3 is not installed"
echo "node $(node --version), npm $(npm --version)"

# --- install ------------------------------------------------------------------------------------
if [ "${SMOKE_REUSE_NODE_MODULES:-0}" = 1 ]; then
  app=$here
  [ -d "$app/node_modules/oidc-provider" ] || (cd "$app" && npm ci --no-audit --no-fund --loglevel=error)
  echo "timing: npm ci skipped (SMOKE_REUSE_NODE_MODULES=1)"
else
  app=$tmp/app
  mkdir -p "$app" "$tmp/npm-cache"
  cp "$here/package.json" "$here/package-lock.json" "$here/provider.mjs" "$app/"
  t0=$(now_ms)
  npm ci --prefix "$app" --cache "$tmp/npm-cache" --prefer-online --no-audit --no-fund --loglevel=error \
    >"$tmp/npm.log" 2>&1 || { cat "$tmp/npm.log" >&2; die "npm ci failed"; }
  echo "timing: npm ci with an empty npm cache: $(( $(now_ms) - t0 )) ms"
  t0=$(now_ms)
  rm -rf "$app/node_modules"
  npm ci --prefix "$app" --cache "$tmp/npm-cache" --offline --no-audit --no-fund --loglevel=error \
    >"$tmp/npm.log" 2>&1 || { cat "$tmp/npm.log" >&2; die "npm ci --offline failed"; }
  echo "timing: npm ci again from that cache (--offline): $(( $(now_ms) - t0 )) ms"
fi

# --- helpers ------------------------------------------------------------------------------------
cat >"$tmp/h.py" <<'PY'
import base64, hashlib, html, json, re, secrets, sys, urllib.parse

def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))

cmd, *args = sys.argv[1:]
if cmd == "random":            # ≥128 bits, base64url
    print(secrets.token_urlsafe(int(args[0])))
elif cmd == "challenge":       # PKCE S256
    print(base64.urlsafe_b64encode(hashlib.sha256(args[0].encode()).digest()).rstrip(b"=").decode())
elif cmd == "json":            # json FILE KEY
    print(json.load(open(args[0]))[args[1]])
elif cmd == "urlencode":
    print(urllib.parse.quote(args[0], safe=""))
elif cmd == "query":           # query URL NAME → value or empty
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(args[0]).query)
    print(q.get(args[1], [""])[0])
elif cmd == "form-action":     # form-action HTML BASE
    m = re.search(r'<form[^>]*method="post"[^>]*action="([^"]+)"', open(args[0]).read())
    print(urllib.parse.urljoin(args[1], html.unescape(m.group(1))) if m else "")
elif cmd == "cancel-href":
    m = re.search(r'<a[^>]*id="cancel"[^>]*href="([^"]+)"', open(args[0]).read())
    print(urllib.parse.urljoin(args[1], html.unescape(m.group(1))) if m else "")
elif cmd == "has-fields":      # the login form has fields login and password
    text = open(args[0]).read()
    ok = 'name="login"' in text and 'name="password"' in text
    sys.exit(0 if ok else 1)
elif cmd == "verify-id-token":  # verify-id-token TOKEN_JSON JWKS_JSON ISSUER CLIENT_ID NONCE
    token = json.load(open(args[0]))["id_token"]
    jwks = json.load(open(args[1]))
    issuer, client_id, nonce = args[2:5]
    h64, p64, s64 = token.split(".")
    header, payload, sig = json.loads(b64d(h64)), json.loads(b64d(p64)), b64d(s64)
    problems = []
    if header.get("alg") != "RS256":
        problems.append(f"alg {header.get('alg')}")
    key = next((k for k in jwks["keys"] if k.get("kid") == header.get("kid")), None)
    if key is None:
        problems.append(f"kid {header.get('kid')} not in the JWKS")
    else:
        # RSASSA-PKCS1-v1_5 with SHA-256, by hand (standard library only).
        n = int.from_bytes(b64d(key["n"]), "big"); e = int.from_bytes(b64d(key["e"]), "big")
        k = (n.bit_length() + 7) // 8
        em = pow(int.from_bytes(sig, "big"), e, n).to_bytes(k, "big")
        digest_info = bytes.fromhex("3031300d060960864801650304020105000420") + hashlib.sha256(f"{h64}.{p64}".encode()).digest()
        expected = b"\x00\x01" + b"\xff" * (k - len(digest_info) - 3) + b"\x00" + digest_info
        if em != expected:
            problems.append("signature does not verify")
    if payload.get("iss") != issuer: problems.append(f"iss {payload.get('iss')}")
    if payload.get("aud") not in (client_id, [client_id]): problems.append(f"aud {payload.get('aud')}")
    if payload.get("nonce") != nonce: problems.append("nonce")
    import time
    if not (payload.get("iat", 0) <= time.time() + 60 < payload.get("exp", 0) + 120): problems.append("iat/exp")
    for claim in ("sub", "preferred_username", "name", "email", "roles", "student_number"):
        if claim not in payload: problems.append(f"no {claim}")
    print(json.dumps(payload, sort_keys=True))
    if problems:
        print("problems: " + ", ".join(problems), file=sys.stderr); sys.exit(1)
elif cmd == "claims":          # claims TOKEN_JSON → payload of the ID token
    token = json.load(open(args[0]))["id_token"]
    print(json.dumps(json.loads(b64d(token.split(".")[1])), sort_keys=True))
PY
h() { python3 "$tmp/h.py" "$@"; }

# http METHOD URL JAR [curl args...]: sets STATUS and LOCATION, the body goes to $tmp/body.
http() {
  local method=$1 url=$2 jar=$3; shift 3
  local out
  out=$(curl -sS --max-time 10 -X "$method" -o "$tmp/body" -w '%{http_code} %{redirect_url}' \
    -b "$jar" -c "$jar" "$@" "$url") || die "curl $method $url failed"
  STATUS=${out%% *}
  LOCATION=${out#* }
}

# follow JAR: follows redirects from the last answer until one leaves for the redirect URI
# (not followed: LOCATION holds it) or a page is shown (STATUS 200/4xx).
follow() {
  local jar=$1 hops=0
  while [[ $STATUS == 30[1237] ]]; do
    case $LOCATION in "$REDIRECT_URI"*|"$OTHER_PORT_REDIRECT_URI"*) return 0 ;; esac
    hops=$((hops + 1)); [ $hops -le 10 ] || die "too many redirects"
    http GET "$LOCATION" "$jar"
  done
  LOCATION=
}

# start_provider [VAR=value...]: starts it with stdin from a fifo held open on fd 3; sets
# ISSUER and STARTUP_MS (spawn → ISSUER line read).
start_provider() {
  rm -f "$tmp/in" "$tmp/provider.out" "$tmp/provider.err"
  mkfifo "$tmp/in"
  local t0; t0=$(now_ms)
  env PORT=0 CLIENT_ID="$CLIENT_ID" CLIENT_SECRET="$CLIENT_SECRET" REDIRECT_URIS="$REDIRECT_URI" "$@" \
    node "$app/provider.mjs" <"$tmp/in" >"$tmp/provider.out" 2>"$tmp/provider.err" &
  provider_pid=$!
  exec 3>"$tmp/in"
  ISSUER=
  for _ in $(seq 1 300); do
    ISSUER=$(sed -n '1s/^ISSUER=//p' "$tmp/provider.out")
    [ -n "$ISSUER" ] && break
    kill -0 "$provider_pid" 2>/dev/null || die "the provider exited before printing ISSUER="
    sleep 0.02
  done
  [ -n "$ISSUER" ] || die "no ISSUER= line within 6 s"
  STARTUP_MS=$(( $(now_ms) - t0 ))
}

# wait_exit SECONDS: waits for the provider to exit; sets EXIT_STATUS (or "running").
wait_exit() {
  local n=$(( $1 * 20 ))
  EXIT_STATUS=running
  for _ in $(seq 1 "$n"); do
    if ! kill -0 "$provider_pid" 2>/dev/null; then
      wait "$provider_pid" && EXIT_STATUS=0 || EXIT_STATUS=$?
      provider_pid=
      return 0
    fi
    sleep 0.05
  done
}

CLIENT_ID=rollcall-smoke
CLIENT_SECRET=$(h random 24)
REDIRECT_URI=http://127.0.0.1:9/cb
OTHER_PORT_REDIRECT_URI=http://127.0.0.1:10/cb

# --- run 1: the flows ---------------------------------------------------------------------------
echo "== start (PORT=0)"
start_provider
echo "timing: provider startup (spawn to ISSUER line): ${STARTUP_MS} ms"
check "first stdout line is ISSUER=http://127.0.0.1:<port>" eval '[[ $ISSUER =~ ^http://127\.0\.0\.1:[0-9]+$ ]]'

echo "== discovery"
http GET "$ISSUER/.well-known/openid-configuration" "$tmp/jar0"
cp "$tmp/body" "$tmp/discovery.json"
check "discovery answers 200" [ "$STATUS" = 200 ]
check "discovery issuer is the issuer" [ "$(h json "$tmp/discovery.json" issuer)" = "$ISSUER" ]
AUTHZ=$(h json "$tmp/discovery.json" authorization_endpoint)
TOKEN=$(h json "$tmp/discovery.json" token_endpoint)
JWKS=$(h json "$tmp/discovery.json" jwks_uri)
USERINFO=$(h json "$tmp/discovery.json" userinfo_endpoint)
check "S256 is the code challenge method" grep -q '"code_challenge_methods_supported":\["S256"\]' "$tmp/discovery.json"
http GET "$JWKS" "$tmp/jar0"
cp "$tmp/body" "$tmp/jwks.json"
check "JWKS has one RS256 signing key" python3 -c '
import json,sys; k=json.load(open(sys.argv[1]))["keys"]
sys.exit(0 if len(k)==1 and k[0]["kty"]=="RSA" and k[0]["alg"]=="RS256" and "d" not in k[0] else 1)' "$tmp/jwks.json"

# authorize JAR [REDIRECT_URI]: a new flow; sets VERIFIER, STATE, NONCE and answers like http.
authorize() {
  local jar=$1 redirect=${2:-$REDIRECT_URI}
  VERIFIER=$(h random 48); STATE=$(h random 16); NONCE=$(h random 16)
  local challenge; challenge=$(h challenge "$VERIFIER")
  http GET "$AUTHZ?response_type=code&client_id=$CLIENT_ID&redirect_uri=$(h urlencode "$redirect")&scope=openid%20profile%20email&state=$STATE&nonce=$NONCE&code_challenge=$challenge&code_challenge_method=S256" "$jar"
}

echo "== sign-in as alice (wrong password first)"
jar=$tmp/jar1
t0=$(now_ms)
authorize "$jar"
follow "$jar"
check "the authorization request leads to a login form" [ "$STATUS" = 200 ]
check "the form has fields login and password" h has-fields "$tmp/body"
ACTION=$(h form-action "$tmp/body" "$ISSUER")
CANCEL=$(h cancel-href "$tmp/body" "$ISSUER")
check "the form posts somewhere and has a cancel link" eval '[ -n "$ACTION" ] && [ -n "$CANCEL" ]'
http POST "$ACTION" "$jar" --data-urlencode login=alice --data-urlencode password=wrong
check "a wrong password shows the form again (200, no redirect)" eval '[ "$STATUS" = 200 ] && [ -z "$LOCATION" ]'
check "... with the fields and an error" eval 'h has-fields "$tmp/body" && grep -q '\''id="error"'\'' "$tmp/body"'
http POST "$(h form-action "$tmp/body" "$ISSUER")" "$jar" --data-urlencode login=nobody --data-urlencode password=alice-password
check "an unknown login shows the form again" eval '[ "$STATUS" = 200 ] && [ -z "$LOCATION" ]'
http POST "$(h form-action "$tmp/body" "$ISSUER")" "$jar" --data-urlencode login=alice --data-urlencode password=alice-password
follow "$jar"
CALLBACK=$LOCATION
echo "  callback: ${CALLBACK%%code=*}code=…"
check "the right password ends at the redirect URI" eval '[[ $CALLBACK == "$REDIRECT_URI?"* ]]'
CODE=$(h query "$CALLBACK" code)
check "... with a code" [ -n "$CODE" ]
check "... and the state" [ "$(h query "$CALLBACK" state)" = "$STATE" ]
check "... and iss (RFC 9207)" [ "$(h query "$CALLBACK" iss)" = "$ISSUER" ]

echo "== token exchange (client_secret_basic)"
http POST "$TOKEN" "$tmp/jar0" -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=authorization_code \
  --data-urlencode "code=$CODE" --data-urlencode "redirect_uri=$REDIRECT_URI" --data-urlencode "code_verifier=$VERIFIER"
cp "$tmp/body" "$tmp/tokens.json"
check "the token endpoint answers 200 with an ID token" eval '[ "$STATUS" = 200 ] && grep -q '\''"id_token"'\'' "$tmp/tokens.json"'
echo "  flow time (authorize → tokens, curl + python): $(( $(now_ms) - t0 )) ms"
if payload=$(h verify-id-token "$tmp/tokens.json" "$tmp/jwks.json" "$ISSUER" "$CLIENT_ID" "$NONCE"); then
  ok "ID token: RS256 signature verifies with the JWKS; iss, aud, nonce, iat/exp; has sub, preferred_username, name, email, roles, student_number"
else
  fail "ID token checks"
fi
echo "  ID token payload: $payload"
check "roles is an array [\"student\"], student_number S1001, sub sub-alice" python3 -c '
import json,sys; p=json.loads(sys.argv[1])
sys.exit(0 if p["roles"]==["student"] and p["student_number"]=="S1001" and p["sub"]=="sub-alice" and p["preferred_username"]=="alice" and p["name"]=="Alice Student" else 1)' "$payload"
ACCESS=$(h json "$tmp/tokens.json" access_token)
http GET "$USERINFO" "$tmp/jar0" -H "Authorization: Bearer $ACCESS"
check "userinfo answers the claims too" eval '[ "$STATUS" = 200 ] && grep -q '\''"student_number":"S1001"'\'' "$tmp/body"'
http POST "$TOKEN" "$tmp/jar0" -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=authorization_code \
  --data-urlencode "code=$CODE" --data-urlencode "redirect_uri=$REDIRECT_URI" --data-urlencode "code_verifier=$VERIFIER"
check "the same code a second time → 400 invalid_grant" eval '[ "$STATUS" = 400 ] && grep -q invalid_grant "$tmp/body"'
http GET "$USERINFO" "$tmp/jar0" -H "Authorization: Bearer $ACCESS"
check "... and the access token is revoked after the code was reused (userinfo 401)" [ "$STATUS" = 401 ]

echo "== second flow in the same browser (provider session: no login form), client_secret_post"
authorize "$jar"
follow "$jar"
CODE=$(h query "$LOCATION" code)
check "straight back to the redirect URI with a code" eval '[ -n "$CODE" ] && [ "$(h query "$LOCATION" state)" = "$STATE" ]'
http POST "$TOKEN" "$tmp/jar0" -d grant_type=authorization_code -d "client_id=$CLIENT_ID" \
  --data-urlencode "client_secret=$CLIENT_SECRET" --data-urlencode "code=$CODE" \
  --data-urlencode "redirect_uri=$REDIRECT_URI" --data-urlencode "code_verifier=wrong-$VERIFIER"
check "a wrong code_verifier → 400 invalid_grant" eval '[ "$STATUS" = 400 ] && grep -q invalid_grant "$tmp/body"'

echo "== another account, a teacher (fresh browser), client_secret_post"
jar=$tmp/jar2
authorize "$jar"; follow "$jar"
http POST "$(h form-action "$tmp/body" "$ISSUER")" "$jar" --data-urlencode login=terry --data-urlencode password=terry-password
follow "$jar"
CODE=$(h query "$LOCATION" code)
http POST "$TOKEN" "$tmp/jar0" -d grant_type=authorization_code -d "client_id=$CLIENT_ID" \
  --data-urlencode "client_secret=$CLIENT_SECRET" --data-urlencode "code=$CODE" \
  --data-urlencode "redirect_uri=$REDIRECT_URI" --data-urlencode "code_verifier=$VERIFIER"
cp "$tmp/body" "$tmp/tokens2.json"
check "client_secret_post works" [ "$STATUS" = 200 ]
teacher=$(h claims "$tmp/tokens2.json")
check "terry's ID token: roles [\"teacher\"], no student_number" python3 -c '
import json,sys; p=json.loads(sys.argv[1]); sys.exit(0 if p["roles"]==["teacher"] and "student_number" not in p else 1)' "$teacher"

echo "== a wrong client secret"
authorize "$tmp/jar1"; follow "$tmp/jar1"
CODE=$(h query "$LOCATION" code)
http POST "$TOKEN" "$tmp/jar0" -u "$CLIENT_ID:not-the-secret" -d grant_type=authorization_code \
  --data-urlencode "code=$CODE" --data-urlencode "redirect_uri=$REDIRECT_URI" --data-urlencode "code_verifier=$VERIFIER"
check "→ 401 invalid_client" eval '[ "$STATUS" = 401 ] && grep -q invalid_client "$tmp/body"'

echo "== cancel"
jar=$tmp/jar3
authorize "$jar"; follow "$jar"
http GET "$(h cancel-href "$tmp/body" "$ISSUER")" "$jar"
follow "$jar"
echo "  callback: $LOCATION"
check "cancel → the redirect URI with error=access_denied" eval '[[ $LOCATION == "$REDIRECT_URI?"* ]] && [ "$(h query "$LOCATION" error)" = access_denied ]'
check "... with the state and no code" eval '[ "$(h query "$LOCATION" state)" = "$STATE" ] && [ -z "$(h query "$LOCATION" code)" ]'

echo "== PKCE is required, redirect URIs"
http GET "$AUTHZ?response_type=code&client_id=$CLIENT_ID&redirect_uri=$(h urlencode "$REDIRECT_URI")&scope=openid&state=s123&nonce=n123" "$tmp/jar4"
check "no code_challenge → error=invalid_request at the redirect URI" eval '[[ $LOCATION == "$REDIRECT_URI?"* ]] && [ "$(h query "$LOCATION" error)" = invalid_request ]'
authorize "$tmp/jar4" "$OTHER_PORT_REDIRECT_URI"; follow "$tmp/jar4"
check "a loopback redirect URI on another port is accepted (RFC 8252)" eval '[ "$STATUS" = 200 ] && h has-fields "$tmp/body"'
authorize "$tmp/jar4" "http://127.0.0.1:9/elsewhere"
check "a redirect URI with another path is refused (400, no redirect)" eval '[ "$STATUS" = 400 ] && [ -z "$LOCATION" ]'

echo "== stop: standard input closes"
exec 3>&-
wait_exit 5
check "the provider exits (status 0) when its stdin closes" [ "$EXIT_STATUS" = 0 ]

# --- run 2: an accounts file, claims only in userinfo, the admin API, SIGTERM -----------------
# sign_in LOGIN PASSWORD TOKENS_FILE: a whole flow in a fresh browser, tokens to TOKENS_FILE.
sign_in() {
  local jar; jar=$tmp/jar-$1-$RANDOM
  http GET "$ISSUER/.well-known/openid-configuration" "$jar"
  AUTHZ=$(h json "$tmp/body" authorization_endpoint); TOKEN=$(h json "$tmp/body" token_endpoint)
  USERINFO=$(h json "$tmp/body" userinfo_endpoint)
  authorize "$jar"; follow "$jar"
  http POST "$(h form-action "$tmp/body" "$ISSUER")" "$jar" --data-urlencode "login=$1" --data-urlencode "password=$2"
  follow "$jar"
  local code; code=$(h query "$LOCATION" code)
  [ -n "$code" ] || { : >"$3"; return 1; }
  http POST "$TOKEN" "$jar" -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=authorization_code \
    --data-urlencode "code=$code" --data-urlencode "redirect_uri=$REDIRECT_URI" --data-urlencode "code_verifier=$VERIFIER"
  cp "$tmp/body" "$3"
  [ "$STATUS" = 200 ]
}

echo "== start again: ACCOUNTS_FILE, CLAIMS_IN_ID_TOKEN=0"
cat >"$tmp/accounts.json" <<'JSON'
[{"sub": "u-42", "login": "carol@uni.test", "password": "carol-pw", "preferred_username": "carol",
  "name": "Carol File", "student_number": "S4242", "roles": ["student"], "groups": ["g1"]}]
JSON
start_provider ACCOUNTS_FILE="$tmp/accounts.json" CLAIMS_IN_ID_TOKEN=0
echo "timing: provider startup (spawn to ISSUER line): ${STARTUP_MS} ms"
check "an account from ACCOUNTS_FILE signs in with its login" sign_in carol@uni.test carol-pw "$tmp/t-carol.json"
carol=$(h claims "$tmp/t-carol.json")
check "CLAIMS_IN_ID_TOKEN=0: the ID token has sub but no profile claims" python3 -c '
import json,sys; p=json.loads(sys.argv[1]); sys.exit(0 if p["sub"]=="u-42" and "name" not in p and "roles" not in p else 1)' "$carol"
http GET "$USERINFO" "$tmp/jar0" -H "Authorization: Bearer $(h json "$tmp/t-carol.json" access_token)"
check "... and userinfo has them" eval 'grep -q '\''"student_number":"S4242"'\'' "$tmp/body" && grep -q '\''"groups":\["g1"\]'\'' "$tmp/body"'
check "the default accounts are not there (alice cannot sign in)" eval '! sign_in alice alice-password "$tmp/t-alice.json"'
sed -i 's/Carol File/Carol Renamed/' "$tmp/accounts.json"
sign_in carol@uni.test carol-pw "$tmp/t-carol2.json" || true
http GET "$USERINFO" "$tmp/jar0" -H "Authorization: Bearer $(h json "$tmp/t-carol2.json" access_token)"
check "ACCOUNTS_FILE is re-read: a changed name shows at the next sign-in" grep -q '"name":"Carol Renamed"' "$tmp/body"
http POST "$ISSUER/__test/accounts" "$tmp/jar0" -H 'Content-Type: application/json' \
  -d '{"sub":"u-43","password":"dan-pw","preferred_username":"dan","name":"Dan Admin-API","roles":"teacher"}'
check "POST /__test/accounts adds an account (204)" [ "$STATUS" = 204 ]
check "... which signs in" sign_in dan dan-pw "$tmp/t-dan.json"
kill -TERM "$provider_pid"
wait_exit 5
check "the provider exits (status 0) on SIGTERM" [ "$EXIT_STATUS" = 0 ]
exec 3>&-

echo
echo "smoke: $passed passed, $failed failed"
[ "$failed" = 0 ]
