#!/usr/bin/env bash
# End-to-end check of the test OpenID provider, the way a relying party and a browser use it:
# discovery, authorization code flow with PKCE S256, state and nonce, the login form (wrong
# password, then the right one), the redirect to the client, the token exchange with the client
# secret, the ID token's signature (against the JWKS) and claims, userinfo, cancel →
# access_denied, the test-only hooks (forged ID tokens, key rotation, injected failures and hangs,
# request counters), and the provider stopping on stdin EOF and on SIGTERM.
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

def rs256_verifies(h64, p64, s64, key):
    # RSASSA-PKCS1-v1_5 with SHA-256, by hand (standard library only).
    n = int.from_bytes(b64d(key["n"]), "big"); e = int.from_bytes(b64d(key["e"]), "big")
    k = (n.bit_length() + 7) // 8
    em = pow(int.from_bytes(b64d(s64), "big"), e, n).to_bytes(k, "big")
    digest_info = bytes.fromhex("3031300d060960864801650304020105000420") + hashlib.sha256(f"{h64}.{p64}".encode()).digest()
    return em == b"\x00\x01" + b"\xff" * (k - len(digest_info) - 3) + b"\x00" + digest_info

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
    header, payload = json.loads(b64d(h64)), json.loads(b64d(p64))
    problems = []
    if header.get("alg") != "RS256":
        problems.append(f"alg {header.get('alg')}")
    key = next((k for k in jwks["keys"] if k.get("kid") == header.get("kid")), None)
    if key is None:
        problems.append(f"kid {header.get('kid')} not in the JWKS")
    elif not rs256_verifies(h64, p64, s64, key):
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
elif cmd == "tok":             # tok TOKEN_JSON header|payload|signature [NAME] → a value of the ID token
    parts = json.load(open(args[0]))["id_token"].split(".")
    if args[1] == "signature":
        print(parts[2])
    else:
        part = json.loads(b64d(parts[0 if args[1] == "header" else 1]))
        value = part.get(args[2], "<absent>")
        print(value if isinstance(value, str) else json.dumps(value))
elif cmd == "sig-ok":          # sig-ok TOKEN_JSON JWKS_JSON: RS256 with a key of the JWKS (by kid)
    h64, p64, s64 = json.load(open(args[0]))["id_token"].split(".")
    kid = json.loads(b64d(h64)).get("kid")
    key = next((k for k in json.load(open(args[1]))["keys"] if k.get("kid") == kid), None)
    sys.exit(0 if json.loads(b64d(h64)).get("alg") == "RS256" and key and rs256_verifies(h64, p64, s64, key) else 1)
elif cmd == "kids":            # kids JWKS_JSON → the kids, in order, space-separated
    print(" ".join(k.get("kid", "?") for k in json.load(open(args[0]))["keys"]))
elif cmd == "delta":           # delta STATS_BEFORE STATS_AFTER → "name=+n ..." (sorted)
    a, b = json.load(open(args[0])), json.load(open(args[1]))
    print(" ".join(f"{k}={b[k] - a.get(k, 0)}" for k in sorted(b)))
elif cmd == "near":            # near VALUE TARGET [SLACK=5]: |VALUE - TARGET| <= SLACK
    sys.exit(0 if abs(float(args[0]) - float(args[1])) <= float(args[2] if len(args) > 2 else 5) else 1)
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

# get_code LOGIN PASSWORD: discovery and a flow in a fresh browser up to the redirect URI;
# sets CODE (empty if the sign-in failed), VERIFIER and NONCE.
get_code() {
  local jar; jar=$tmp/jar-$1-$RANDOM
  http GET "$ISSUER/.well-known/openid-configuration" "$jar"
  AUTHZ=$(h json "$tmp/body" authorization_endpoint); TOKEN=$(h json "$tmp/body" token_endpoint)
  USERINFO=$(h json "$tmp/body" userinfo_endpoint)
  authorize "$jar"; follow "$jar"
  http POST "$(h form-action "$tmp/body" "$ISSUER")" "$jar" --data-urlencode "login=$1" --data-urlencode "password=$2"
  follow "$jar"
  CODE=$(h query "$LOCATION" code)
}

# redeem TOKENS_FILE: exchanges CODE (client_secret_basic); the answer goes to TOKENS_FILE.
redeem() {
  http POST "$TOKEN" "$tmp/jar0" -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=authorization_code \
    --data-urlencode "code=$CODE" --data-urlencode "redirect_uri=$REDIRECT_URI" --data-urlencode "code_verifier=$VERIFIER"
  cp "$tmp/body" "$1"
  [ "$STATUS" = 200 ]
}

# sign_in LOGIN PASSWORD TOKENS_FILE: a whole flow in a fresh browser, tokens to TOKENS_FILE.
sign_in() {
  get_code "$1" "$2"
  [ -n "$CODE" ] || { : >"$3"; return 1; }
  redeem "$3"
}

# admin METHOD PATH [JSON]: a call to the test-only admin API; answers like http.
admin() {
  if [ $# -ge 3 ]; then
    http "$1" "$ISSUER$2" "$tmp/jar0" -H 'Content-Type: application/json' --data-binary "$3"
  else
    http "$1" "$ISSUER$2" "$tmp/jar0"
  fi
}

# snap FILE: the provider's request counters (GET /__test/stats) to FILE.
snap() { curl -sS --max-time 5 -o "$1" "$ISSUER/__test/stats" || die "GET /__test/stats failed"; }

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

# --- test hooks (still run 1: default accounts, claims in the ID token) --------------------------
KID1=$(h kids "$tmp/jwks.json")
tok() { h tok "$@"; }

echo "== test hooks: GET /__test/stats"
snap "$tmp/s0.json"
check "GET /__test/stats answers the four counters" python3 -c '
import json,sys; s=json.load(open(sys.argv[1]))
sys.exit(0 if sorted(s)==["discovery_fetches","jwks_fetches","token_requests","userinfo_requests"] and all(isinstance(v,int) for v in s.values()) else 1)' "$tmp/s0.json"
http GET "$JWKS" "$tmp/jar0"
snap "$tmp/s1.json"
check "one JWKS fetch: jwks_fetches +1, nothing else" \
  [ "$(h delta "$tmp/s0.json" "$tmp/s1.json")" = "discovery_fetches=0 jwks_fetches=1 token_requests=0 userinfo_requests=0" ]
sign_in alice alice-password "$tmp/t-plain.json" || true
http GET "$USERINFO" "$tmp/jar0" -H "Authorization: Bearer $(h json "$tmp/t-plain.json" access_token)"
snap "$tmp/s2.json"
check "a sign-in and a userinfo call: discovery +1, token +1, userinfo +1, jwks +0" \
  [ "$(h delta "$tmp/s1.json" "$tmp/s2.json")" = "discovery_fetches=1 jwks_fetches=0 token_requests=1 userinfo_requests=1" ]
check "with no hook set the ID token is oidc-provider's own (kid $KID1, all checks pass)" \
  eval '[ "$(tok "$tmp/t-plain.json" header kid)" = "$KID1" ] && h verify-id-token "$tmp/t-plain.json" "$tmp/jwks.json" "$ISSUER" "$CLIENT_ID" "$NONCE" >/dev/null'

echo "== test hooks: POST /__test/id-token"
admin POST /__test/id-token '{"aud": "someone-else"}'
check "an aud override → 204" [ "$STATUS" = 204 ]
sign_in alice alice-password "$tmp/t-aud.json" || true
check "... the next ID token has aud someone-else" [ "$(tok "$tmp/t-aud.json" payload aud)" = someone-else ]
check "... nonce, iss and sub unchanged" eval '[ "$(tok "$tmp/t-aud.json" payload nonce)" = "$NONCE" ] && [ "$(tok "$tmp/t-aud.json" payload iss)" = "$ISSUER" ] && [ "$(tok "$tmp/t-aud.json" payload sub)" = sub-alice ]'
check "... signed again with the provider's key (kid $KID1, verifies with the JWKS)" \
  eval '[ "$(tok "$tmp/t-aud.json" header kid)" = "$KID1" ] && h sig-ok "$tmp/t-aud.json" "$tmp/jwks.json"'
sign_in alice alice-password "$tmp/t-after.json" || true
check "times defaults to 1: the ID token after it passes all checks" \
  eval 'h verify-id-token "$tmp/t-after.json" "$tmp/jwks.json" "$ISSUER" "$CLIENT_ID" "$NONCE" >/dev/null'

admin POST /__test/id-token "{\"aud\": [\"$CLIENT_ID\", \"other\"], \"nonce\": \"forged-nonce\", \"iss\": \"http://127.0.0.1:1\", \"sub\": \"sub-mallory\", \"times\": 2}"
forged_ok=1
for i in 1 2; do
  sign_in alice alice-password "$tmp/t-multi$i.json" || forged_ok=0
  python3 -c '
import json,sys; p=json.loads(sys.argv[1])
sys.exit(0 if p["aud"]==[sys.argv[2],"other"] and p["nonce"]=="forged-nonce" and p["iss"]=="http://127.0.0.1:1" and p["sub"]=="sub-mallory" else 1)' \
    "$(h claims "$tmp/t-multi$i.json")" "$CLIENT_ID" || forged_ok=0
  h sig-ok "$tmp/t-multi$i.json" "$tmp/jwks.json" || forged_ok=0
done
check "aud (array), nonce, iss, sub with times 2: the next two ID tokens carry them, signed by the provider key" [ "$forged_ok" = 1 ]
sign_in alice alice-password "$tmp/t-multi3.json" || true
check "... and the third is untouched" eval 'h verify-id-token "$tmp/t-multi3.json" "$tmp/jwks.json" "$ISSUER" "$CLIENT_ID" "$NONCE" >/dev/null'

admin POST /__test/id-token '{"exp_offset": -60, "iat_offset": -3660}'
sign_in alice alice-password "$tmp/t-exp.json" || true
now=$(date +%s)
check "exp_offset -60, iat_offset -3660: exp = now - 60, iat = now - 3660 (±5 s), signed by the provider key" \
  eval 'h near "$(tok "$tmp/t-exp.json" payload exp)" $((now - 60)) && h near "$(tok "$tmp/t-exp.json" payload iat)" $((now - 3660)) && h sig-ok "$tmp/t-exp.json" "$tmp/jwks.json"'

admin POST /__test/id-token '{"nonce": null}'
sign_in alice alice-password "$tmp/t-nononce.json" || true
check '"nonce": null removes the claim' eval '[ "$(tok "$tmp/t-nononce.json" payload nonce)" = "<absent>" ] && h sig-ok "$tmp/t-nononce.json" "$tmp/jwks.json"'

admin POST /__test/id-token '{"key": "unknown"}'
sign_in alice alice-password "$tmp/t-unknown.json" || true
http GET "$JWKS" "$tmp/jar0"
cp "$tmp/body" "$tmp/jwks-now.json"
UNKNOWN_KID=$(tok "$tmp/t-unknown.json" header kid)
echo "  unknown kid: $UNKNOWN_KID"
check "key unknown: RS256 with a kid absent from the JWKS" \
  eval '[ "$(tok "$tmp/t-unknown.json" header alg)" = RS256 ] && [ "$UNKNOWN_KID" != "<absent>" ] && [ "$UNKNOWN_KID" != "$KID1" ] && ! grep -qF "\"$UNKNOWN_KID\"" "$tmp/jwks-now.json"'
check "... with otherwise right claims (aud, nonce)" \
  eval '[ "$(tok "$tmp/t-unknown.json" payload aud)" = "$CLIENT_ID" ] && [ "$(tok "$tmp/t-unknown.json" payload nonce)" = "$NONCE" ]'

admin POST /__test/id-token '{"key": "none-alg"}'
sign_in alice alice-password "$tmp/t-none.json" || true
check 'key none-alg: alg none, no kid, an empty signature' \
  eval '[ "$(tok "$tmp/t-none.json" header alg)" = none ] && [ "$(tok "$tmp/t-none.json" header kid)" = "<absent>" ] && [ -z "$(tok "$tmp/t-none.json" signature)" ]'

admin POST /__test/id-token '{"aud": "someone-else"}'
admin DELETE /__test/id-token
check "DELETE /__test/id-token → 204" [ "$STATUS" = 204 ]
sign_in alice alice-password "$tmp/t-cleared.json" || true
check "... and the pending override is gone" eval 'h verify-id-token "$tmp/t-cleared.json" "$tmp/jwks.json" "$ISSUER" "$CLIENT_ID" "$NONCE" >/dev/null'
admin POST /__test/id-token '{"audience": "x"}'; s1=$STATUS
admin POST /__test/id-token '{"exp_offset": "soon"}'; s2=$STATUS
admin POST /__test/id-token '{"key": "mine"}'; s3=$STATUS
check "an unknown field or a wrong type → 400" [ "$s1 $s2 $s3" = "400 400 400" ]

echo "== test hooks: POST /__test/fail"
admin POST /__test/fail '{"endpoint": "token", "mode": "error", "times": 1}'
check "fail token error → 204" [ "$STATUS" = 204 ]
snap "$tmp/f0.json"
check "... the token exchange answers 500 {\"error\":\"server_error\"}" \
  eval '! sign_in alice alice-password "$tmp/t-fail.json" && [ "$STATUS" = 500 ] && [ "$(h json "$tmp/t-fail.json" error)" = server_error ]'
check "... once (times 1): the next sign-in gets its tokens" sign_in alice alice-password "$tmp/t-ok.json"
snap "$tmp/f1.json"
check "... both token requests were counted" \
  [ "$(h delta "$tmp/f0.json" "$tmp/f1.json")" = "discovery_fetches=2 jwks_fetches=0 token_requests=2 userinfo_requests=0" ]

ACCESS=$(h json "$tmp/t-ok.json" access_token)
admin POST /__test/fail '{"endpoint": "userinfo", "mode": "error"}'
http GET "$USERINFO" "$tmp/jar0" -H "Authorization: Bearer $ACCESS"; s1=$STATUS
http GET "$USERINFO" "$tmp/jar0" -H "Authorization: Bearer $ACCESS"; s2=$STATUS
check "fail userinfo error without times: every userinfo call answers 500" [ "$s1 $s2" = "500 500" ]
admin DELETE /__test/fail
check "DELETE /__test/fail → 204" [ "$STATUS" = 204 ]
http GET "$USERINFO" "$tmp/jar0" -H "Authorization: Bearer $ACCESS"
check "... and userinfo answers 200 again" eval '[ "$STATUS" = 200 ] && grep -q "\"sub\":\"sub-alice\"" "$tmp/body"'

admin POST /__test/fail '{"endpoint": "jwks", "mode": "error", "times": 1}'
http GET "$JWKS" "$tmp/jar0"; s1=$STATUS; e1=$(h json "$tmp/body" error 2>/dev/null || true)
http GET "$JWKS" "$tmp/jar0"; s2=$STATUS
admin POST /__test/fail '{"endpoint": "discovery", "mode": "error", "times": 1}'
http GET "$ISSUER/.well-known/openid-configuration" "$tmp/jar0"; s3=$STATUS
http GET "$ISSUER/.well-known/openid-configuration" "$tmp/jar0"; s4=$STATUS
check "fail jwks / discovery error (times 1): 500 server_error, then 200" [ "$s1 $e1 $s2 $s3 $s4" = "500 server_error 200 500 200" ]
admin POST /__test/fail '{"endpoint": "authorization", "mode": "error"}'; s1=$STATUS
admin POST /__test/fail '{"endpoint": "token", "mode": "slow"}'; s2=$STATUS
check "an unknown endpoint or mode → 400" [ "$s1 $s2" = "400 400" ]

get_code alice alice-password
admin POST /__test/fail '{"endpoint": "token", "mode": "hang", "times": 1}'
t0=$(now_ms); rc=0
curl -sS -o /dev/null --max-time 2 -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=authorization_code \
  --data-urlencode "code=$CODE" --data-urlencode "redirect_uri=$REDIRECT_URI" --data-urlencode "code_verifier=$VERIFIER" \
  "$TOKEN" 2>/dev/null || rc=$?
hang_ms=$(( $(now_ms) - t0 ))
check "fail token hang: the token request gets no answer (curl gives up after 2 s: exit 28, ${hang_ms} ms)" \
  eval '[ "$rc" = 28 ] && [ "$hang_ms" -ge 1900 ]'
check "... once, and the hung request never reached oidc-provider: the same code still redeems" redeem "$tmp/t-hang.json"

snap "$tmp/h0.json"
admin POST /__test/fail '{"endpoint": "jwks", "mode": "hang"}'
t0=$(now_ms); rc=0
curl -sS -o /dev/null --max-time 20 "$JWKS" 2>/dev/null & hang_pid=$!
for _ in $(seq 1 100); do  # until the provider has the request
  snap "$tmp/h1.json"
  [ "$(h delta "$tmp/h0.json" "$tmp/h1.json")" = "discovery_fetches=0 jwks_fetches=1 token_requests=0 userinfo_requests=0" ] && break
  sleep 0.05
done
admin DELETE /__test/fail
wait "$hang_pid" || rc=$?
drop_ms=$(( $(now_ms) - t0 ))
check "DELETE /__test/fail drops a hung request (curl: empty reply, exit 52, after ${drop_ms} ms of its 20 s)" \
  eval '[ "$rc" = 52 ] && [ "$drop_ms" -lt 10000 ]'

echo "== test hooks: POST /__test/rotate-key"
snap "$tmp/r0.json"
admin POST /__test/rotate-key
KID2=$(h json "$tmp/body" kid)
check "rotate-key → 200 {\"kid\": <a new kid>}" eval '[ "$STATUS" = 200 ] && [ -n "$KID2" ] && [ "$KID2" != "$KID1" ]'
http GET "$JWKS" "$tmp/jar0"
cp "$tmp/body" "$tmp/jwks2.json"
check "the JWKS lists the new key first, then the old one" [ "$(h kids "$tmp/jwks2.json")" = "$KID2 $KID1" ]
check "... public RS256 signing keys only" python3 -c '
import json,sys; k=json.load(open(sys.argv[1]))["keys"]
sys.exit(0 if all(x["kty"]=="RSA" and x["alg"]=="RS256" and x["use"]=="sig" and "d" not in x for x in k) else 1)' "$tmp/jwks2.json"
sign_in alice alice-password "$tmp/t-rot.json" || true
check "ID tokens are now signed with the new key (header kid = $KID2)" [ "$(tok "$tmp/t-rot.json" header kid)" = "$KID2" ]
check "... and pass all checks against the new JWKS" \
  eval 'h verify-id-token "$tmp/t-rot.json" "$tmp/jwks2.json" "$ISSUER" "$CLIENT_ID" "$NONCE" >/dev/null'
check "... but not against the JWKS fetched before the rotation (unknown kid: refetch)" eval '! h sig-ok "$tmp/t-rot.json" "$tmp/jwks.json"'
admin POST /__test/id-token '{"aud": "someone-else"}'
sign_in alice alice-password "$tmp/t-rot-aud.json" || true
check "an override after a rotation is signed with the new key too" \
  eval '[ "$(tok "$tmp/t-rot-aud.json" header kid)" = "$KID2" ] && [ "$(tok "$tmp/t-rot-aud.json" payload aud)" = someone-else ] && h sig-ok "$tmp/t-rot-aud.json" "$tmp/jwks2.json"'
admin POST /__test/rotate-key
KID3=$(h json "$tmp/body" kid)
http GET "$JWKS" "$tmp/jar0"
cp "$tmp/body" "$tmp/jwks3.json"
sign_in alice alice-password "$tmp/t-rot3.json" || true
check "a second rotation: JWKS [new, previous, original], tokens carry the newest kid" \
  eval '[ "$(h kids "$tmp/jwks3.json")" = "$KID3 $KID2 $KID1" ] && [ "$(tok "$tmp/t-rot3.json" header kid)" = "$KID3" ] && h sig-ok "$tmp/t-rot3.json" "$tmp/jwks3.json"'
snap "$tmp/r1.json"
check "the counters saw exactly 2 JWKS fetches, 3 discoveries, 3 token requests" \
  [ "$(h delta "$tmp/r0.json" "$tmp/r1.json")" = "discovery_fetches=3 jwks_fetches=2 token_requests=3 userinfo_requests=0" ]
admin DELETE /__test/stats
snap "$tmp/r2.json"
check "DELETE /__test/stats → 204 and zeroes them" \
  eval '[ "$STATUS" = 204 ] && grep -q "\"jwks_fetches\":0" "$tmp/r2.json" && ! grep -q "[1-9]" "$tmp/r2.json"'
admin GET /__test/nothing
check "an unknown /__test/ path → 404" [ "$STATUS" = 404 ]

echo "== stop: standard input closes"
exec 3>&-
wait_exit 5
check "the provider exits (status 0) when its stdin closes" [ "$EXIT_STATUS" = 0 ]

# --- run 2: an accounts file, claims only in userinfo, the admin API, SIGTERM -----------------
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
