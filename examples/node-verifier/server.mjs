// A Node service that protects GET /protected with latchkey access tokens,
// configured with nothing but the issuer URL and the audience:
//
//   npm ci && ISSUER=http://127.0.0.1:8080 AUDIENCE=latchkey PORT=8083 npm start
//
// jose's createRemoteJWKSet caches the keys from the issuer's jwks_uri and
// refetches when a token names an unknown key, at most once per cooldown. A
// token whose session has ended (logout, revocation …) is refused through the
// status list it names (status-list.mjs).
import http from 'node:http';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { StatusLists } from './status-list.mjs';

const issuer = (process.env.ISSUER ?? '').replace(/\/$/, '');
const audience = process.env.AUDIENCE ?? 'latchkey';
const port = Number(process.env.PORT ?? 8083);
if (!issuer) throw new Error("set ISSUER to latchkey's URL");

const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
if (discovery.issuer !== issuer) throw new Error(`the discovery document names another issuer: ${discovery.issuer}`);
const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri), {
  cooldownDuration: Number(process.env.JWKS_COOLDOWN_MS ?? 30_000),
});
// How long a verified status list is still used when it cannot be renewed.
const statusLists = new StatusLists(jwks, { maxStaleMs: Number(process.env.STATUS_LIST_MAX_STALE_SECS ?? 300) * 1000 });

async function verify(token) {
  // jose takes the algorithm from the key the kid selects and refuses `none`.
  const { payload } = await jwtVerify(token, jwks, {
    issuer,
    audience,
    typ: 'at+jwt',
    clockTolerance: 60,
    requiredClaims: ['exp', 'sub', 'status'],
  });
  if (await statusLists.revoked(payload.status.status_list)) throw new Error('the session has ended');
  return payload;
}

function send(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

http
  .createServer(async (req, res) => {
    if (req.method !== 'GET' || req.url !== '/protected') return send(res, 404, { error: 'not_found' });
    const token = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    try {
      if (!token) throw new Error('no bearer token');
      const claims = await verify(token.trim());
      send(res, 200, { sub: claims.sub, email: claims.email, sid: claims.sid });
    } catch (error) {
      console.error(`token refused: ${error.code ?? error.message}`);
      send(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' });
    }
  })
  .listen(port, '127.0.0.1', () => console.log(`node-verifier listening on http://127.0.0.1:${port}`));
