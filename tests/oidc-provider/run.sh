#!/usr/bin/env bash
# Starts the test OpenID provider, installing its locked dependencies first if they are missing.
# Configuration: the environment variables described at the top of provider.mjs, e.g.
#   PORT=0 CLIENT_ID=rollcall CLIENT_SECRET=s3cret \
#   REDIRECT_URIS=http://127.0.0.1:8080/api/v1/auth/oidc/uni/callback tests/oidc-provider/run.sh
# Standard output carries only the line `ISSUER=http://127.0.0.1:<port>` (npm's output goes
# to standard error). The provider exits when its standard input closes: from a terminal that
# is Ctrl-D; with </dev/null set EXIT_ON_STDIN_EOF=0.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -d "$here/node_modules/oidc-provider" ]; then
  npm ci --prefix "$here" --no-audit --no-fund --loglevel=error >&2
fi
exec node "$here/provider.mjs"
