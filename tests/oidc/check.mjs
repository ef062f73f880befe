// End-to-end check of provider.mjs acting as a relying party with plain HTTP.
// Starts the provider as a child process (PORT=0), runs the scenarios, sends SIGTERM.
// Usage: node check.mjs        (or ISSUER_URL=http://127.0.0.1:PORT node check.mjs to use a running one)
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as readline from 'node:readline';
import assert from 'node:assert/strict';

const CLIENT_ID = 'latchkey-test';
const CLIENT_SECRET = 's3cret:with/odd&chars';
const REDIRECT_URI = 'http://127.0.0.1:1/auth/callback'; // never contacted

const b64u = (buf) => Buffer.from(buf).toString('base64url');
const log = (...a) => console.log(...a);

// ---------- start provider ----------
let child;
let issuerFromReady;
if (process.env.ISSUER_URL) {
  issuerFromReady = process.env.ISSUER_URL;
} else {
  child = spawn(process.execPath, [new URL('./provider.mjs', import.meta.url).pathname], {
    env: { ...process.env, PORT: '0', CLIENT_ID, CLIENT_SECRET, REDIRECT_URI },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stderr.on('data', () => {}); // provider warnings: ignore
  const rl = readline.createInterface({ input: child.stdout });
  issuerFromReady = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('provider not ready in 15s')), 15000);
    rl.once('line', (line) => {
      clearTimeout(t);
      const m = /^ready (\S+)$/.exec(line);
      m ? resolve(m[1]) : reject(new Error(`unexpected first line: ${line}`));
    });
    child.once('exit', (c) => reject(new Error(`provider exited early (${c})`)));
  });
}
log(`provider ready line -> issuer ${issuerFromReady}`);

// ---------- tiny cookie jar (name, value, path; single host) ----------
class Jar {
  constructor() { this.c = new Map(); }
  store(res) {
    for (const sc of res.headers.getSetCookie()) {
      const [nv, ...attrs] = sc.split(';').map((s) => s.trim());
      const i = nv.indexOf('=');
      const name = nv.slice(0, i); const value = nv.slice(i + 1);
      let path = '/'; let expired = value === '';
      for (const a of attrs) {
        const [k, v] = a.split('=');
        if (k.toLowerCase() === 'path') path = v;
        if (k.toLowerCase() === 'expires' && Date.parse(v) < Date.now()) expired = true;
      }
      const key = `${name}|${path}`;
      if (expired) this.c.delete(key); else this.c.set(key, { name, value, path });
    }
  }
  header(url) {
    const p = new URL(url).pathname;
    return [...this.c.values()]
      .filter((k) => p === k.path || p.startsWith(k.path.endsWith('/') ? k.path : `${k.path}/`))
      .map((k) => `${k.name}=${k.value}`).join('; ');
  }
}

async function req(jar, url, opts = {}) {
  const headers = { ...(opts.headers || {}) };
  const cookie = jar?.header(url);
  if (cookie) headers.cookie = cookie;
  const res = await fetch(url, { ...opts, headers, redirect: 'manual' });
  jar?.store(res);
  return res;
}

// ---------- discovery + JWKS ----------
const disco = await (await fetch(`${issuerFromReady}/.well-known/openid-configuration`)).json();
assert.equal(disco.issuer, issuerFromReady);
assert.ok(disco.code_challenge_methods_supported.includes('S256'));
const jwks = await (await fetch(disco.jwks_uri)).json();
log(`discovery ok: issuer=${disco.issuer} auth=${disco.authorization_endpoint} token=${disco.token_endpoint} jwks keys=${jwks.keys.length} (${jwks.keys.map((k) => `${k.kty}/${k.alg}`)})`);

function verifyIdToken(idToken, nonce) {
  const [h, p, s] = idToken.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  assert.equal(header.alg, 'RS256');
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, 'kid in JWKS');
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  const ok = crypto.verify('sha256', Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url'));
  assert.ok(ok, 'RS256 signature verifies against JWKS');
  const claims = JSON.parse(Buffer.from(p, 'base64url'));
  const now = Math.floor(Date.now() / 1000);
  assert.equal(claims.iss, disco.issuer);
  assert.equal(claims.aud, CLIENT_ID);
  assert.equal(claims.nonce, nonce);
  assert.ok(claims.exp > now && claims.iat <= now + 5);
  return { header, claims };
}

// ---------- one authorization-code run ----------
async function startAuth(jar, { pkce = true, extra = {} } = {}) {
  const verifier = b64u(crypto.randomBytes(32));
  const challenge = b64u(crypto.createHash('sha256').update(verifier).digest());
  const state = b64u(crypto.randomBytes(12));
  const nonce = b64u(crypto.randomBytes(12));
  const u = new URL(disco.authorization_endpoint);
  u.search = new URLSearchParams({
    client_id: CLIENT_ID, response_type: 'code', scope: 'openid email profile',
    redirect_uri: REDIRECT_URI, state, nonce,
    ...(pkce ? { code_challenge: challenge, code_challenge_method: 'S256' } : {}),
    ...extra,
  });
  const r1 = await req(jar, u.href);
  return { verifier, state, nonce, r1 };
}

async function interactionUrl(jar, r1) {
  assert.equal(r1.status, 303);
  const url = new URL(r1.headers.get('location'), disco.issuer).href; // relative: /interaction/<uid>
  const page = await req(jar, url);
  assert.equal(page.status, 200);
  const html = await page.text();
  assert.match(html, /name="username"/);
  return url;
}

async function submit(jar, url, form) {
  const r2 = await req(jar, url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  assert.equal(r2.status, 303);
  const resume = r2.headers.get('location'); // <issuer>/auth/<uid>
  const r3 = await req(jar, resume);
  assert.equal(r3.status, 303);
  return { resume, final: new URL(r3.headers.get('location')) };
}

async function token(code, verifier, method) {
  const body = new URLSearchParams({
    grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier,
  });
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (method === 'client_secret_basic') {
    // RFC 6749 2.3.1: form-urlencode id and secret before base64
    const enc = (s) => encodeURIComponent(s).replace(/%20/g, '+');
    headers.authorization = `Basic ${Buffer.from(`${enc(CLIENT_ID)}:${enc(CLIENT_SECRET)}`).toString('base64')}`;
  } else {
    body.set('client_id', CLIENT_ID); body.set('client_secret', CLIENT_SECRET);
  }
  const r = await fetch(disco.token_endpoint, { method: 'POST', headers, body });
  return { status: r.status, json: await r.json() };
}

async function loginScenario(username, authMethod, extra = {}) {
  log(`\n== login as ${username} (token auth: ${authMethod}; extra auth params: ${JSON.stringify(extra)})`);
  const jar = new Jar();
  const { verifier, state, nonce, r1 } = await startAuth(jar, { extra });
  const iurl = await interactionUrl(jar, r1);
  log(`  GET /auth -> 303 ${new URL(iurl).pathname}; cookies: ${[...jar.c.values()].map((c) => `${c.name}(path=${c.path})`).join(', ')}`);
  const { resume, final } = await submit(jar, iurl, { username, password: 'anything' });
  log(`  POST ${new URL(iurl).pathname} -> 303 ${new URL(resume).pathname} -> 303 ${final.origin}${final.pathname}?${[...final.searchParams.keys()].join('&')}`);
  assert.equal(`${final.origin}${final.pathname}`, REDIRECT_URI);
  assert.equal(final.searchParams.get('state'), state);
  assert.equal(final.searchParams.get('iss'), disco.issuer);
  const code = final.searchParams.get('code');
  assert.ok(code);

  const t = await token(code, verifier, authMethod);
  assert.equal(t.status, 200, JSON.stringify(t.json));
  log(`  token: 200 token_type=${t.json.token_type} scope="${t.json.scope}" expires_in=${t.json.expires_in}`);
  const { header, claims } = verifyIdToken(t.json.id_token, nonce);
  log(`  id_token header ${JSON.stringify(header)}`);
  log(`  id_token claims ${JSON.stringify(claims)}`);
  const expectedSub = crypto.createHash('sha256').update(username).digest('hex').slice(0, 24);
  assert.equal(claims.sub, expectedSub);
  assert.equal(claims.email, username);
  assert.equal(claims.email_verified, !username.startsWith('unverified'));

  const ui = await (await fetch(disco.userinfo_endpoint, { headers: { authorization: `Bearer ${t.json.access_token}` } })).json();
  assert.equal(ui.email, username);
  log(`  userinfo ${JSON.stringify(ui)}`);

  const again = await token(code, verifier, authMethod);
  assert.equal(again.status, 400);
  log(`  code reuse -> ${again.status} ${again.json.error}`);
  log('  OK: signature, iss, aud, nonce, exp, sub, email, email_verified');
}

async function denyScenario(how) {
  log(`\n== user denies (${how})`);
  const jar = new Jar();
  const { state, r1 } = await startAuth(jar);
  const iurl = await interactionUrl(jar, r1);
  let final;
  if (how === 'form action=deny') {
    ({ final } = await submit(jar, iurl, { action: 'deny' }));
  } else {
    const r2 = await req(jar, `${iurl}/abort`);
    assert.equal(r2.status, 303);
    const r3 = await req(jar, r2.headers.get('location'));
    final = new URL(r3.headers.get('location'));
  }
  log(`  -> ${final.href}`);
  assert.equal(`${final.origin}${final.pathname}`, REDIRECT_URI);
  assert.equal(final.searchParams.get('error'), 'access_denied');
  assert.equal(final.searchParams.get('state'), state);
  assert.equal(final.searchParams.get('code'), null);
  log('  OK: error=access_denied, state echoed, no code');
}

async function negativeScenarios() {
  log('\n== negative checks');
  // PKCE is required
  const { r1, state } = await startAuth(new Jar(), { pkce: false });
  const loc = new URL(r1.headers.get('location'), disco.issuer);
  assert.equal(loc.searchParams.get('error'), 'invalid_request');
  assert.equal(loc.searchParams.get('state'), state);
  log(`  no code_challenge -> ${r1.status} error=${loc.searchParams.get('error')} (${loc.searchParams.get('error_description')})`);
  // wrong verifier
  const jar = new Jar();
  const s = await startAuth(jar);
  const { final } = await submit(jar, await interactionUrl(jar, s.r1), { username: 'carol@example.com' });
  const bad = await token(final.searchParams.get('code'), b64u(crypto.randomBytes(32)), 'client_secret_post');
  assert.equal(bad.status, 400); assert.equal(bad.json.error, 'invalid_grant');
  log(`  wrong code_verifier -> ${bad.status} ${bad.json.error}`);
  // wrong redirect_uri
  const u = new URL(disco.authorization_endpoint);
  u.search = new URLSearchParams({ client_id: CLIENT_ID, response_type: 'code', scope: 'openid', redirect_uri: `${REDIRECT_URI}/x`, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' });
  const r = await fetch(u, { redirect: 'manual' });
  log(`  unregistered redirect_uri -> ${r.status} (error page, no redirect)`);
  assert.equal(r.status, 400);
}

let failed = false;
try {
  await loginScenario('alice@example.com', 'client_secret_basic', { prompt: 'select_account', access_type: 'offline' });
  await loginScenario('unverified-bob@example.com', 'client_secret_post');
  await denyScenario('form action=deny');
  await denyScenario('GET /interaction/<uid>/abort');
  await negativeScenarios();
  log('\nALL CHECKS PASSED');
} catch (e) {
  failed = true;
  console.error('CHECK FAILED:', e);
} finally {
  if (child) {
    const exited = new Promise((r) => child.once('exit', (code, sig) => r({ code, sig })));
    child.kill('SIGTERM');
    const { code, sig } = await exited;
    log(`provider after SIGTERM: exit code=${code} signal=${sig}`);
  }
  process.exit(failed ? 1 : 0);
}
