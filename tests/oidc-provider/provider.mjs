// A real OpenID provider (panva's certified `oidc-provider`) for rollcall's SSO tests.
//
// Start: `npm ci --prefix tests/oidc-provider && node tests/oidc-provider/provider.mjs`
// (or tests/oidc-provider/run.sh). The first line on standard output is always
// `ISSUER=http://127.0.0.1:<port>`, printed once the provider accepts connections; nothing
// else is written to standard output (oidc-provider's notices go to standard error).
//
// Environment (all optional):
//   PORT               port on 127.0.0.1 (default 0: the kernel picks a free one)
//   CLIENT_ID          default `rollcall`
//   CLIENT_SECRET      default `rollcall-test-secret`
//   REDIRECT_URIS      comma-separated, default `http://127.0.0.1:8080/api/v1/auth/oidc/uni/callback`
//   LOOPBACK_ANY_PORT  1 (default): a registered `http://127.0.0.1:<p>/path` redirect URI also
//                      matches any other port on that loopback host (RFC 8252 7.3), so a test
//                      server on port 0 needs no registration of its own; 0: exact match only
//   ACCOUNTS_FILE      JSON: an array of accounts or {"accounts": [...]}. Re-read on every use,
//                      so a test may rewrite it between sign-ins. Default: the set below.
//   CLAIMS_IN_ID_TOKEN 1 (default): the claims of the granted scopes go into the ID token;
//                      0: the ID token carries only the protocol claims, the rest is in userinfo
//   EXIT_ON_STDIN_EOF  1 (default): exit when standard input closes (the test harness died);
//                      0: don't (for a manual start with </dev/null)
//   LOG_REQUESTS       1: log every request line to standard error
//
// An account is {sub, password, login?, ...claims}: `login` (default: preferred_username,
// else sub) is what the login form takes; every other field except `password` is a claim,
// e.g. preferred_username, name, email, email_verified, student_number, roles (a string or an
// array of strings). Claims in the `profile` scope: the standard profile claims, roles, groups,
// student_number and any other field found in the accounts at startup; `email` scope: email,
// email_verified.
//
// Endpoints (oidc-provider's default routes; discovery has them): authorization /auth, token
// /token, JWKS /jwks, userinfo /me (GET and POST), discovery /.well-known/openid-configuration
// (and /.well-known/oauth-authorization-server).
//
// Test-only admin API (loopback, no authentication, it is a test provider). Bodies are JSON; a
// malformed body, an unknown field or a wrong type answers 400 with a plain-text reason.
//   POST /__test/accounts   body: one account as JSON → 204; adds or replaces it (by sub).
//                           Takes precedence over ACCOUNTS_FILE.
//   POST /__test/id-token   body: {"aud"?: string|[string], "nonce"?: string, "iss"?: string,
//                           "sub"?: string, "exp_offset"?: s, "iat_offset"?: s,
//                           "key"?: "provider"|"unknown"|"none-alg", "times"?: n ≥ 1 (default 1)}
//                           → 204. The next `times` token-endpoint answers (200) that carry an
//                           id_token get it forged: the payload with those claims replaced (null
//                           removes one), exp = now + exp_offset, iat = now + iat_offset (the
//                           provider's clock, seconds), then signed RS256 by the provider's
//                           current key (`provider`, the default), by a fresh RSA key whose kid
//                           (`unknown-…`) is in no JWKS (`unknown`), or not at all (`none-alg`:
//                           alg none, no kid, empty signature). A new POST replaces a pending one.
//   DELETE /__test/id-token → 204; drops a pending override.
//   POST /__test/rotate-key → 200 {"kid": "<new kid>"}: a new RSA-2048 signing key. From then on
//                           the JWKS lists the newest key first, then the older ones (the
//                           original last), and every ID token is signed by the newest key.
//   POST /__test/fail       body: {"endpoint": "token"|"userinfo"|"jwks"|"discovery",
//                           "mode": "error"|"hang", "times"?: n ≥ 1 (default: until cleared)}
//                           → 204; replaces that endpoint's previous setting. The next `times`
//                           requests there (any client, valid or not) get: `error` → 500
//                           {"error":"server_error","error_description":…}; `hang` → no answer,
//                           the connection stays open until the client gives up, 120 s pass
//                           (then it is destroyed), DELETE /__test/fail or the provider stops.
//                           A failed or hung request never reaches oidc-provider (a code sent
//                           to a hung token endpoint stays unused).
//   DELETE /__test/fail     → 204; clears every endpoint and drops the hung connections.
//   GET /__test/stats       → 200 {"jwks_fetches": n, "token_requests": n, "userinfo_requests": n,
//                           "discovery_fetches": n}: requests that reached those endpoints since
//                           the start (or the last reset), including failed and hung ones.
//   DELETE /__test/stats    → 204; sets them to 0.
// Without a pending override and a rotation, ID tokens are oidc-provider's own, untouched.
//
// Interaction: GET /interaction/<uid> shows a plain HTML form (fields `login`, `password`,
// POSTed to /interaction/<uid>/login) and a `cancel` link (/interaction/<uid>/abort).
// A wrong login or password shows the form again (200, with an error paragraph). Consent is
// granted automatically. Cancel ends the flow with `error=access_denied` at the redirect URI.

import {
  randomBytes, generateKeyPairSync, timingSafeEqual, createHash, createPublicKey, sign as cryptoSign,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

const started = process.hrtime.bigint();

// oidc-provider 9 supports Node.js 22 LTS and later; it runs on 20.18+ (with a warning) but
// not on older releases (it uses URL.parse and crypto.hash), such as Debian 12's Node.js 18.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 18)) {
  console.error(`the test OpenID provider needs Node.js 20.18 or later (22 LTS preferred), not ${process.version}`);
  process.exit(3);
}
const { default: Provider } = await import('oidc-provider');

// oidc-provider prints its notices with console.info (standard output); standard output is
// ours, for the ISSUER line.
console.info = (...args) => console.error(...args);

const env = (name, fallback) => {
  const value = process.env[name];
  return value === undefined || value === '' ? fallback : value;
};
const flag = (name, fallback) => !['0', 'false', 'no', 'off'].includes(env(name, fallback).toLowerCase());

const PORT = Number.parseInt(env('PORT', '0'), 10);
const HOST = '127.0.0.1';
const CLIENT_ID = env('CLIENT_ID', 'rollcall');
const CLIENT_SECRET = env('CLIENT_SECRET', 'rollcall-test-secret');
const REDIRECT_URIS = env('REDIRECT_URIS', 'http://127.0.0.1:8080/api/v1/auth/oidc/uni/callback')
  .split(',').map((uri) => uri.trim()).filter(Boolean);
const LOOPBACK_ANY_PORT = flag('LOOPBACK_ANY_PORT', '1');
const ACCOUNTS_FILE = env('ACCOUNTS_FILE', undefined);
const CLAIMS_IN_ID_TOKEN = flag('CLAIMS_IN_ID_TOKEN', '1');
const EXIT_ON_STDIN_EOF = flag('EXIT_ON_STDIN_EOF', '1');
const LOG_REQUESTS = flag('LOG_REQUESTS', '0');

if (!Number.isInteger(PORT) || PORT < 0 || PORT > 65535) {
  console.error(`PORT must be a port number, not ${process.env.PORT}`);
  process.exit(2);
}

// --- accounts --------------------------------------------------------------------------------

const DEFAULT_ACCOUNTS = [
  {
    sub: 'sub-alice', password: 'alice-password', preferred_username: 'alice', name: 'Alice Student',
    email: 'alice@uni.test', email_verified: true, student_number: 'S1001', roles: ['student'],
  },
  {
    sub: 'sub-bob', password: 'bob-password', preferred_username: 'bob', name: 'Bob Student',
    email: 'bob@uni.test', email_verified: true, student_number: 'S1002', roles: ['student'],
  },
  {
    sub: 'sub-terry', password: 'terry-password', preferred_username: 'terry', name: 'Terry Teacher',
    email: 'terry@uni.test', email_verified: true, roles: ['teacher'],
  },
  {
    // Both role values: the contract says teacher wins.
    sub: 'sub-tess', password: 'tess-password', preferred_username: 'tess', name: 'Tess Tutor',
    email: 'tess@uni.test', email_verified: true, student_number: 'S1003', roles: ['student', 'teacher'],
  },
  {
    // A role claim that is a plain string, not an array.
    sub: 'sub-tom', password: 'tom-password', preferred_username: 'tom', name: 'Tom Single',
    email: 'tom@uni.test', email_verified: true, roles: 'teacher',
  },
  {
    // Maps to no rollcall role: no_account.
    sub: 'sub-stan', password: 'stan-password', preferred_username: 'stan', name: 'Stan Staff',
    email: 'stan@uni.test', email_verified: true, roles: ['staff'],
  },
  {
    // No role claim at all.
    sub: 'sub-nora', password: 'nora-password', preferred_username: 'nora', name: 'Nora Noroles',
    email: 'nora@uni.test', email_verified: false,
  },
];

const runtimeAccounts = new Map(); // sub → account, from POST /__test/accounts

function validAccount(account) {
  return account !== null && typeof account === 'object' && !Array.isArray(account)
    && typeof account.sub === 'string' && account.sub !== ''
    && typeof account.password === 'string';
}

function fileAccounts() {
  if (!ACCOUNTS_FILE) return DEFAULT_ACCOUNTS;
  const parsed = JSON.parse(readFileSync(ACCOUNTS_FILE, 'utf8'));
  const list = Array.isArray(parsed) ? parsed : parsed?.accounts;
  if (!Array.isArray(list) || !list.every(validAccount)) {
    throw new Error(`${ACCOUNTS_FILE}: expected an array of {sub, password, ...claims}`);
  }
  return list;
}

function allAccounts() {
  const bySub = new Map(fileAccounts().map((account) => [account.sub, account]));
  for (const [sub, account] of runtimeAccounts) bySub.set(sub, account);
  return [...bySub.values()];
}

const loginName = (account) => account.login ?? account.preferred_username ?? account.sub;
const findBySub = (sub) => allAccounts().find((account) => account.sub === sub);
const findByLogin = (login) => allAccounts().find((account) => loginName(account) === login);

function claimsOf(account) {
  const { password: _password, login: _login, ...claims } = account;
  return claims;
}

function passwordMatches(account, password) {
  const digest = (value) => createHash('sha256').update(String(value)).digest();
  return timingSafeEqual(digest(account.password), digest(password));
}

// Claim names released with the profile scope; the provider only releases claims it knows.
const PROFILE_CLAIMS = new Set([
  'name', 'given_name', 'family_name', 'middle_name', 'nickname', 'preferred_username', 'profile',
  'picture', 'website', 'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at',
  'roles', 'groups', 'student_number',
]);
const EMAIL_CLAIMS = ['email', 'email_verified'];
for (const account of fileAccounts()) {
  for (const name of Object.keys(claimsOf(account))) {
    if (name !== 'sub' && !EMAIL_CLAIMS.includes(name)) PROFILE_CLAIMS.add(name);
  }
}

// --- the provider ------------------------------------------------------------------------------

const loopbackOnly = REDIRECT_URIS.every((uri) => {
  const url = URL.parse(uri);
  return url?.protocol === 'http:' && ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname);
});

const newKid = (prefix) => `${prefix}-${randomBytes(6).toString('hex')}`;
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = {
  ...privateKey.export({ format: 'jwk' }),
  kid: newKid('test'),
  alg: 'RS256',
  use: 'sig',
};

const html = (value) => String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function configuration() {
  return {
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: REDIRECT_URIS,
      response_types: ['code'],
      grant_types: ['authorization_code'],
      // client_secret_basic and client_secret_post are both accepted for a client registered
      // with either (oidc-provider treats them as one secret-based method).
      token_endpoint_auth_method: 'client_secret_basic',
      // `native` is what makes oidc-provider ignore the port of a loopback redirect URI.
      application_type: LOOPBACK_ANY_PORT && loopbackOnly ? 'native' : 'web',
    }],
    responseTypes: ['code'],
    pkce: { required: () => true }, // oidc-provider supports S256 only
    scopes: ['openid', 'profile', 'email'],
    claims: {
      openid: ['sub'],
      profile: [...PROFILE_CLAIMS],
      email: EMAIL_CLAIMS,
    },
    conformIdTokenClaims: CLAIMS_IN_ID_TOKEN ? false : true,
    async findAccount(_ctx, sub) {
      const account = findBySub(sub);
      if (!account) return undefined;
      return {
        accountId: sub,
        async claims() {
          // Read again: a test may have changed the account since the sign-in.
          return { ...claimsOf(findBySub(sub) ?? account), sub };
        },
      };
    },
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    features: {
      devInteractions: { enabled: false },
      userinfo: { enabled: true },
      revocation: { enabled: false },
      introspection: { enabled: false },
      rpInitiatedLogout: { enabled: false },
    },
    interactions: {
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
    },
    async renderError(ctx, out, _error) {
      ctx.type = 'html';
      ctx.body = `<!doctype html><html><head><meta charset="utf-8"><title>Error</title></head><body>
<h1>Error</h1>${Object.entries(out).map(([k, v]) => `<p><b>${html(k)}</b>: <span id="${html(k)}">${html(v)}</span></p>`).join('\n')}
</body></html>`;
    },
  };
}

// --- interactions ------------------------------------------------------------------------------

function loginPage(uid, { login = '', error = false, clientId }) {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>Sign in</title></head>
<body>
<h1>Sign in</h1>
<p>to continue to ${html(clientId)}</p>
${error ? '<p id="error" role="alert">Invalid login or password.</p>' : ''}
<form method="post" action="/interaction/${html(uid)}/login">
<label>Login <input type="text" name="login" value="${html(login)}" autofocus></label>
<label>Password <input type="password" name="password"></label>
<button type="submit">Sign in</button>
</form>
<a id="cancel" href="/interaction/${html(uid)}/abort">Cancel</a>
</body></html>
`;
}

function send(res, status, type, body) {
  res.writeHead(status, {
    'Content-Type': type,
    'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

async function readBody(req, limit = 64 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw Object.assign(new Error('body too large'), { status: 413 });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function grantConsent(provider, req, res, details) {
  const { prompt, params, session, grantId } = details;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  if (missing.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  const id = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId: id } }, { mergeWithLastSubmission: true });
}

async function interaction(provider, req, res, uid, action) {
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (error) {
    // Unknown, expired or foreign interaction (its cookie is missing).
    send(res, 400, 'text/plain; charset=utf-8', `interaction not found: ${error.message}\n`);
    return;
  }
  if (details.uid !== uid) {
    send(res, 400, 'text/plain; charset=utf-8', 'interaction mismatch\n');
    return;
  }
  const clientId = details.params.client_id;

  if (action === 'abort') {
    await provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
    return;
  }

  if (details.prompt.name === 'consent') {
    await grantConsent(provider, req, res, details);
    return;
  }
  if (details.prompt.name !== 'login') {
    send(res, 501, 'text/plain; charset=utf-8', `prompt ${details.prompt.name} not implemented\n`);
    return;
  }

  if (action === undefined) {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
      return;
    }
    send(res, 200, 'text/html; charset=utf-8', loginPage(uid, { clientId }));
    return;
  }

  // action === 'login'
  if (req.method !== 'POST') {
    send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    return;
  }
  const form = new URLSearchParams(await readBody(req));
  const login = form.get('login') ?? '';
  const password = form.get('password') ?? '';
  const account = findByLogin(login);
  if (!account || !passwordMatches(account, password)) {
    send(res, 200, 'text/html; charset=utf-8', loginPage(uid, { login, error: true, clientId }));
    return;
  }
  await provider.interactionFinished(req, res, {
    login: { accountId: account.sub },
  }, { mergeWithLastSubmission: false });
}

async function adminAccounts(req, res) {
  if (req.method !== 'POST') {
    send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    return;
  }
  let account;
  try {
    account = JSON.parse(await readBody(req));
  } catch {
    account = undefined;
  }
  if (!validAccount(account)) {
    send(res, 400, 'text/plain; charset=utf-8', 'expected {sub, password, ...claims}\n');
    return;
  }
  runtimeAccounts.set(account.sub, account);
  res.writeHead(204).end();
}

// --- test hooks: forged ID tokens, key rotation, injected failures, counters ------------------
//
// oidc-provider's key set is fixed at construction, so a rotated key lives here: the Koa
// middleware below re-signs ID tokens in token-endpoint responses and adds the rotated public
// keys to the JWKS response.

const b64url = (value) => Buffer.from(value).toString('base64url');
const nowSeconds = () => Math.floor(Date.now() / 1000);

function rsaKey(kid, key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey) {
  const { kty, n, e } = createPublicKey(key).export({ format: 'jwk' });
  return { kid, privateKey: key, publicJwk: { kty, n, e, kid, alg: 'RS256', use: 'sig' } };
}

// Signing keys, oldest first: the configured one (served by oidc-provider itself), then the
// rotated ones. The last one signs.
const signingKeys = [rsaKey(signingKey.kid, privateKey)];
const currentKey = () => signingKeys[signingKeys.length - 1];

let idTokenOverride; // {claims, remove, expOffset, iatOffset, key, unknownKey, remaining}
const failures = new Map(); // endpoint → {mode, remaining}
const hanging = new Set(); // sockets of requests that are never answered
const HANG_LIMIT_MS = 120_000;
const stats = { jwks_fetches: 0, token_requests: 0, userinfo_requests: 0, discovery_fetches: 0 };
const STAT_OF = {
  jwks: 'jwks_fetches', token: 'token_requests', userinfo: 'userinfo_requests', discovery: 'discovery_fetches',
};

// RS256 compact JWS by hand (node:crypto signs RSASSA-PKCS1-v1_5 for an RSA key by default).
function signJwt(header, payload, key) {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  return `${input}.${cryptoSign('sha256', Buffer.from(input), key).toString('base64url')}`;
}

// Re-signs an ID token issued by oidc-provider: with the current key after a rotation, and with
// the pending overrides of POST /__test/id-token. Returns it unchanged when neither applies.
function reissueIdToken(idToken) {
  const override = idTokenOverride;
  if (!override && signingKeys.length === 1) return idToken;
  const [h64, p64] = idToken.split('.');
  const header = JSON.parse(Buffer.from(h64, 'base64url').toString('utf8'));
  const payload = JSON.parse(Buffer.from(p64, 'base64url').toString('utf8'));
  let key = currentKey();
  if (override) {
    override.remaining -= 1;
    if (override.remaining <= 0) idTokenOverride = undefined;
    Object.assign(payload, override.claims);
    for (const name of override.remove) delete payload[name];
    const now = nowSeconds();
    if (override.expOffset !== undefined) payload.exp = now + override.expOffset;
    if (override.iatOffset !== undefined) payload.iat = now + override.iatOffset;
    if (override.key === 'none-alg') {
      const { kid: _kid, ...rest } = header;
      return `${b64url(JSON.stringify({ ...rest, alg: 'none' }))}.${b64url(JSON.stringify(payload))}.`;
    }
    if (override.key === 'unknown') key = override.unknownKey;
  }
  return signJwt({ ...header, alg: 'RS256', kid: key.kid }, payload, key.privateKey);
}

// Which test-hook endpoint a request is for, or undefined.
function endpointOf(ctx, paths) {
  const { method, path } = ctx;
  const get = method === 'GET' || method === 'HEAD';
  if (path === paths.token && method === 'POST') return 'token';
  if (path === paths.jwks && get) return 'jwks';
  if (path === paths.userinfo && (get || method === 'POST')) return 'userinfo';
  if (paths.discovery.includes(path) && get) return 'discovery';
  return undefined;
}

function testHooks(provider) {
  const paths = {
    token: provider.pathFor('token'),
    jwks: provider.pathFor('jwks'),
    userinfo: provider.pathFor('userinfo'),
    discovery: ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server'],
  };
  return async function testHookMiddleware(ctx, next) {
    const endpoint = endpointOf(ctx, paths);
    if (endpoint === undefined) {
      await next();
      return;
    }
    stats[STAT_OF[endpoint]] += 1;

    const failure = failures.get(endpoint);
    if (failure) {
      failure.remaining -= 1;
      if (failure.remaining <= 0) failures.delete(endpoint);
      if (failure.mode === 'hang') {
        // Never answered: Koa leaves the response alone; the socket is destroyed after 120 s,
        // by DELETE /__test/fail or when the provider stops.
        ctx.respond = false;
        const { socket } = ctx.req;
        hanging.add(socket);
        const timer = setTimeout(() => socket.destroy(), HANG_LIMIT_MS);
        timer.unref();
        socket.once('close', () => {
          clearTimeout(timer);
          hanging.delete(socket);
        });
        return;
      }
      ctx.status = 500;
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { error: 'server_error', error_description: `${endpoint} failure injected by POST /__test/fail` };
      return;
    }

    await next();

    if (endpoint === 'token' && ctx.status === 200 && typeof ctx.body?.id_token === 'string') {
      ctx.body = { ...ctx.body, id_token: reissueIdToken(ctx.body.id_token) };
    } else if (endpoint === 'jwks' && ctx.status === 200 && Array.isArray(ctx.body?.keys)
      && signingKeys.length > 1) {
      // A new object: ctx.body.keys is oidc-provider's own key array.
      const rotated = signingKeys.slice(1).reverse().map((key) => key.publicJwk);
      ctx.body = { keys: [...rotated, ...ctx.body.keys] };
    }
  };
}

async function readJson(req, res) {
  try {
    const text = await readBody(req);
    return text.trim() === '' ? {} : JSON.parse(text);
  } catch (error) {
    if (error.status) throw error;
    send(res, 400, 'text/plain; charset=utf-8', 'body is not JSON\n');
    return undefined;
  }
}

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);
const isCount = (value) => Number.isInteger(value) && value > 0;

// The problem with an override body, or undefined.
function idTokenProblem(body) {
  if (!isObject(body)) return 'expected a JSON object';
  const known = ['aud', 'nonce', 'iss', 'sub', 'exp_offset', 'iat_offset', 'key', 'times'];
  const unknown = Object.keys(body).filter((name) => !known.includes(name));
  if (unknown.length) return `unknown fields ${unknown.join(', ')}; known: ${known.join(', ')}`;
  const { aud } = body;
  if (aud !== undefined && aud !== null && typeof aud !== 'string'
    && !(Array.isArray(aud) && aud.every((value) => typeof value === 'string'))) {
    return 'aud: a string, an array of strings or null';
  }
  for (const name of ['nonce', 'iss', 'sub']) {
    if (body[name] !== undefined && body[name] !== null && typeof body[name] !== 'string') {
      return `${name}: a string or null`;
    }
  }
  for (const name of ['exp_offset', 'iat_offset']) {
    if (body[name] !== undefined && !Number.isInteger(body[name])) return `${name}: an integer (seconds)`;
  }
  if (body.key !== undefined && !['provider', 'unknown', 'none-alg'].includes(body.key)) {
    return 'key: "provider", "unknown" or "none-alg"';
  }
  if (body.times !== undefined && !isCount(body.times)) return 'times: a positive integer';
  return undefined;
}

async function adminIdToken(req, res) {
  if (req.method === 'DELETE') {
    idTokenOverride = undefined;
    res.writeHead(204).end();
    return;
  }
  if (req.method !== 'POST') {
    send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    return;
  }
  const body = await readJson(req, res);
  if (body === undefined) return;
  const problem = idTokenProblem(body);
  if (problem) {
    send(res, 400, 'text/plain; charset=utf-8', `${problem}\n`);
    return;
  }
  const claims = {};
  const remove = [];
  for (const name of ['aud', 'nonce', 'iss', 'sub']) {
    if (body[name] === null) remove.push(name);
    else if (body[name] !== undefined) claims[name] = body[name];
  }
  const key = body.key ?? 'provider';
  idTokenOverride = {
    claims,
    remove,
    expOffset: body.exp_offset,
    iatOffset: body.iat_offset,
    key,
    unknownKey: key === 'unknown' ? rsaKey(newKid('unknown')) : undefined,
    remaining: body.times ?? 1,
  };
  res.writeHead(204).end();
}

async function adminRotateKey(req, res) {
  if (req.method !== 'POST') {
    send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    return;
  }
  const key = rsaKey(newKid('test'));
  signingKeys.push(key);
  send(res, 200, 'application/json', `${JSON.stringify({ kid: key.kid })}\n`);
}

async function adminFail(req, res) {
  if (req.method === 'DELETE') {
    failures.clear();
    for (const socket of hanging) socket.destroy();
    res.writeHead(204).end();
    return;
  }
  if (req.method !== 'POST') {
    send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    return;
  }
  const body = await readJson(req, res);
  if (body === undefined) return;
  if (!isObject(body) || !Object.hasOwn(STAT_OF, body.endpoint) || !['error', 'hang'].includes(body.mode)
    || (body.times !== undefined && !isCount(body.times))
    || Object.keys(body).some((name) => !['endpoint', 'mode', 'times'].includes(name))) {
    send(res, 400, 'text/plain; charset=utf-8',
      'expected {"endpoint": "token"|"userinfo"|"jwks"|"discovery", "mode": "error"|"hang", "times"?: n}\n');
    return;
  }
  failures.set(body.endpoint, { mode: body.mode, remaining: body.times ?? Infinity });
  res.writeHead(204).end();
}

async function adminStats(req, res) {
  if (req.method === 'DELETE') {
    for (const name of Object.keys(stats)) stats[name] = 0;
    res.writeHead(204).end();
    return;
  }
  if (req.method !== 'GET') {
    send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    return;
  }
  send(res, 200, 'application/json', `${JSON.stringify(stats)}\n`);
}

const ADMIN = {
  '/__test/accounts': adminAccounts,
  '/__test/id-token': adminIdToken,
  '/__test/rotate-key': adminRotateKey,
  '/__test/fail': adminFail,
  '/__test/stats': adminStats,
};

// --- the server --------------------------------------------------------------------------------

const server = createServer();
server.keepAliveTimeout = 1000;

await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(PORT, HOST, resolve);
});
const { port } = server.address();
const issuer = `http://${HOST}:${port}`;

const provider = new Provider(issuer, configuration());
provider.on('server_error', (_ctx, error) => console.error('oidc-provider server_error:', error));
provider.use(testHooks(provider));
const providerCallback = provider.callback();

server.on('request', (req, res) => {
  if (LOG_REQUESTS) console.error(`${req.method} ${req.url}`);
  const { pathname } = new URL(req.url, issuer);
  const match = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|abort))?$/.exec(pathname);
  let handled;
  if (match) {
    handled = interaction(provider, req, res, match[1], match[2]);
  } else if (Object.hasOwn(ADMIN, pathname)) {
    handled = ADMIN[pathname](req, res);
  } else if (pathname.startsWith('/__test/')) {
    send(res, 404, 'text/plain; charset=utf-8', `no such test hook; there are ${Object.keys(ADMIN).join(' ')}\n`);
    return;
  } else {
    providerCallback(req, res);
    return;
  }
  handled.catch((error) => {
    console.error(`${req.method} ${req.url}:`, error);
    if (!res.headersSent) send(res, error.status ?? 500, 'text/plain; charset=utf-8', `${error.message}\n`);
    else res.destroy();
  });
});

function stop(reason) {
  console.error(`oidc test provider stopping: ${reason}`);
  server.closeAllConnections?.();
  server.close();
  process.exit(0);
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
if (EXIT_ON_STDIN_EOF) {
  process.stdin.on('end', () => stop('standard input closed'));
  process.stdin.on('error', () => stop('standard input failed'));
  process.stdin.resume();
}

const ms = Number(process.hrtime.bigint() - started) / 1e6;
process.stdout.write(`ISSUER=${issuer}\n`);
console.error(`oidc test provider ready at ${issuer} in ${ms.toFixed(0)} ms (client ${CLIENT_ID}, `
  + `redirect URIs ${REDIRECT_URIS.join(' ')}${LOOPBACK_ANY_PORT && loopbackOnly ? ', any loopback port' : ''})`);
