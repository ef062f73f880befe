// Local OpenID Connect provider for latchkey tests ("Sign in with Google"-like).
//
// Env:
//   PORT          port on 127.0.0.1 (0 = pick a free port; the real one is in the ready line)
//   ISSUER        default http://127.0.0.1:<PORT>  (no path, trailing slash is stripped)
//   CLIENT_ID     default test-client
//   CLIENT_SECRET default test-secret
//   REDIRECT_URI  required; exact-match redirect URI(s) (several: separate with spaces/commas)
//   EXIT_ON_STDIN_EOF=1  also exit when stdin is closed (parent died)
//
// stdout carries exactly one line: "ready <issuer>". Everything else goes to stderr.

import * as http from 'node:http';
import * as crypto from 'node:crypto';

// oidc-provider prints NOTICE lines with console.info (stdout); keep stdout clean.
console.info = (...a) => console.error(...a);
console.log = (...a) => console.error(...a);

const { default: Provider, errors, interactionPolicy } = await import('oidc-provider');

const env = process.env;
const PORT = Number.parseInt(env.PORT ?? '0', 10);
const CLIENT_ID = env.CLIENT_ID || 'test-client';
const CLIENT_SECRET = env.CLIENT_SECRET || 'test-secret';
const REDIRECT_URIS = (env.REDIRECT_URI || '').split(/[\s,]+/).filter(Boolean);
if (!Number.isInteger(PORT) || PORT < 0 || PORT > 65535) fail(`bad PORT ${env.PORT}`);
if (REDIRECT_URIS.length === 0) fail('REDIRECT_URI is required');

function fail(msg) {
  process.stderr.write(`provider: ${msg}\n`);
  process.exit(2);
}

// ---- accounts: the login form's username decides the account ----
// sub = first 24 hex chars of sha256(username); email = username (verbatim);
// email_verified = !username.startsWith('unverified').
const accounts = new Map(); // sub -> account

function accountFor(username) {
  const sub = crypto.createHash('sha256').update(username, 'utf8').digest('hex').slice(0, 24);
  const local = username.split('@')[0];
  const account = {
    sub,
    email: username,
    email_verified: !username.startsWith('unverified'),
    name: local,
    given_name: local,
  };
  accounts.set(sub, account);
  return account;
}

async function findAccount(_ctx, sub) {
  const a = accounts.get(sub);
  if (!a) return undefined;
  return { accountId: sub, claims: async () => ({ ...a }) };
}

// ---- signing key: fresh RSA key per process, RS256 ----
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), alg: 'RS256', use: 'sig' };

// Listen first so PORT=0 works and the issuer carries the real port.
const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(PORT, '127.0.0.1', resolve);
});
const actualPort = server.address().port;
const ISSUER = (env.ISSUER || `http://127.0.0.1:${actualPort}`).replace(/\/+$/, '');
if (new URL(ISSUER).pathname !== '/') fail('ISSUER must not contain a path');

const provider = new Provider(ISSUER, {
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    redirect_uris: REDIRECT_URIS,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    // basic is registered; oidc-provider 9 accepts client_secret_post for a
    // client_secret_basic client too (both are "secret" methods).
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
  }],
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  jwks: { keys: [jwk] },
  enabledJWA: { idTokenSigningAlgValues: ['RS256'] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name'],
  },
  scopes: ['openid', 'email', 'profile'],
  conformIdTokenClaims: false, // email/email_verified go into the ID token itself
  pkce: { required: () => true }, // S256 is the only method oidc-provider 9 supports
  findAccount,
  cookies: { keys: ['latchkey-test-cookie-key'] },
  features: {
    devInteractions: { enabled: false },
    userinfo: { enabled: true },
  },
  interactions: {
    url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    policy: (() => {
      // Accept Google-style prompt=select_account (shows the same login form).
      const policy = interactionPolicy.base();
      policy.add(new interactionPolicy.Prompt({ name: 'select_account', requestable: true }), 0);
      return policy;
    })(),
  },
  ttl: {
    AccessToken: 3600, AuthorizationCode: 120, IdToken: 3600,
    Interaction: 600, Session: 3600, Grant: 3600,
  },
  async renderError(ctx, out) {
    ctx.type = 'text/plain; charset=utf-8';
    ctx.body = Object.entries(out).map(([k, v]) => `${k}: ${v}`).join('\n') + '\n';
  },
});
provider.on('server_error', (_ctx, err) => process.stderr.write(`server_error: ${err.stack}\n`));

// ---- minimal interaction routes ----
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function send(res, status, type, body) {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

async function readForm(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function deny(req, res) {
  await provider.interactionFinished(req, res, {
    error: 'access_denied',
    error_description: 'End-User denied the request',
  }, { mergeWithLastSubmission: false });
}

async function login(req, res, details, username) {
  const account = accountFor(username);
  const { params } = details;
  const grant = new provider.Grant({ accountId: account.sub, clientId: params.client_id });
  grant.addOIDCScope(String(params.scope || 'openid'));
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, {
    select_account: {}, // resolves a requested prompt=select_account
    login: { accountId: account.sub },
    consent: { grantId },
  }, { mergeWithLastSubmission: false });
}

async function interaction(req, res, uid, sub) {
  const details = await provider.interactionDetails(req, res); // needs the _interaction cookie
  if (details.uid !== uid) return send(res, 400, 'text/plain', 'interaction uid/cookie mismatch\n');
  const url = new URL(req.url, ISSUER);

  if (sub === 'abort') return deny(req, res); // GET or POST /interaction/<uid>/abort

  if (req.method === 'GET' && !sub) {
    const u = `/interaction/${esc(uid)}`;
    return send(res, 200, 'text/html; charset=utf-8', `<!doctype html>
<html><head><title>Test IdP sign-in</title></head><body>
<h1>Sign in to ${esc(details.params.client_id)}</h1>
<p>Requested scope: ${esc(details.params.scope)}</p>
<form method="post" action="${u}">
  <label>Email <input name="username" autofocus></label>
  <label>Password <input name="password" type="password"></label>
  <button type="submit" name="action" value="login">Sign in &amp; allow</button>
  <button type="submit" name="action" value="deny">Deny</button>
</form></body></html>`);
  }

  if (req.method === 'POST' && (!sub || sub === 'login')) {
    const form = await readForm(req);
    const action = form.get('action') || 'login';
    if (action === 'deny') return deny(req, res);
    if (action !== 'login') return send(res, 400, 'text/plain', 'action must be login or deny\n');
    const username = (form.get('username') || url.searchParams.get('username') || '').trim();
    if (!username) return send(res, 400, 'text/plain', 'username is required\n');
    return login(req, res, details, username);
  }
  return send(res, 405, 'text/plain', 'method not allowed\n');
}

const oidcCallback = provider.callback();
server.on('request', async (req, res) => {
  const m = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|abort))?\/?(?:\?.*)?$/.exec(req.url);
  if (!m) return oidcCallback(req, res);
  try {
    await interaction(req, res, m[1], m[2]);
  } catch (err) {
    const status = err instanceof errors.SessionNotFound ? 400 : 500;
    if (!res.headersSent) send(res, status, 'text/plain', `${err.name}: ${err.message}\n`);
    process.stderr.write(`interaction error: ${err.stack}\n`);
  }
});

// ---- lifecycle ----
function shutdown(sig) {
  process.stderr.write(`provider: ${sig}, exiting\n`);
  server.close();
  server.closeAllConnections();
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
if (env.EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', () => shutdown('stdin EOF'));
  process.stdin.resume();
}

process.stdout.write(`ready ${ISSUER}\n`);
