// Token Status Lists (draft-ietf-oauth-status-list-20) for a resource
// server: has the session of this access token ended?
//
// The list a token names is fetched, verified through the issuer's JWKS (the
// key its kid names, that key's algorithm, typ statuslist+jwt, sub the URI
// fetched), cached for its ttl, and read: bit idx % 8 of byte idx / 8,
// 1 = ended. It fails closed: a list that cannot be fetched or verified, or
// an index beyond it, refuses the token, except that a copy verified
// earlier is used while younger than maxStaleMs.
import { inflateSync } from 'node:zlib';
import { jwtVerify } from 'jose';

const MIN_TTL_MS = 1_000;
const MAX_TTL_MS = 3_600_000; // a list's ttl is clamped to this (draft §11.5)

export class StatusLists {
  constructor(jwks, { maxStaleMs = 300_000 } = {}) {
    this.jwks = jwks;
    this.maxStaleMs = maxStaleMs;
    this.cache = new Map(); // uri -> { bytes, fetched, ttlMs }
  }

  /** Whether the session of a token with this status.status_list has ended; throws when that cannot be known. */
  async revoked({ uri, idx }) {
    if (typeof uri !== 'string' || !Number.isInteger(idx) || idx < 0) throw new Error('malformed status claim');
    let cached = this.cache.get(uri);
    const now = Date.now();
    if (!cached || now - cached.fetched >= cached.ttlMs) {
      try {
        cached = await this.#fetch(uri);
        this.cache.set(uri, cached);
      } catch (error) {
        if (!cached || now - cached.fetched >= this.maxStaleMs) {
          this.cache.delete(uri);
          throw new Error(`no valid status list at ${uri}: ${error.code ?? error.message}`);
        }
        console.error(`status list ${uri} could not be renewed (${error.message}); using the copy held`);
      }
    }
    const byte = cached.bytes[Math.floor(idx / 8)];
    if (byte === undefined) throw new Error('index beyond the list');
    return ((byte >> (idx % 8)) & 1) === 1;
  }

  async #fetch(uri) {
    const response = await fetch(uri, { headers: { accept: 'application/statuslist+jwt' }, redirect: 'error' });
    if (!response.ok) throw new Error(`status list answered ${response.status}`);
    const { payload } = await jwtVerify(await response.text(), this.jwks, {
      typ: 'statuslist+jwt',
      requiredClaims: ['sub', 'iat', 'exp'],
    });
    if (payload.sub !== uri) throw new Error(`the list is not the one fetched (sub ${payload.sub})`);
    if (payload.status_list?.bits !== 1) throw new Error('not a one-bit list');
    const bytes = inflateSync(Buffer.from(payload.status_list.lst, 'base64url'));
    const ttlMs = Math.min(Math.max((payload.ttl ?? 300) * 1000, MIN_TTL_MS), MAX_TTL_MS);
    return { bytes, fetched: Date.now(), ttlMs };
  }
}
