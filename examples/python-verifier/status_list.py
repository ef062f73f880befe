"""Token Status Lists (draft-ietf-oauth-status-list-20) for a resource
server: has the session of this access token ended?

The list a token names is fetched, verified through the issuer's JWKS (the
key its `kid` names, that key's algorithm, `typ` `statuslist+jwt`, `sub` the
URI fetched), cached for its `ttl`, and read: bit `idx % 8` of byte
`idx // 8`, 1 = ended. It fails closed: a list that cannot be fetched or
verified, or an index beyond it, refuses the token, except that a copy
verified earlier is used while younger than `max_stale` seconds.
"""

import base64
import threading
import time
import urllib.request
import zlib

import jwt

MIN_TTL, MAX_TTL = 1, 3600  # a list's ttl is clamped to this (draft §11.5)


class StatusUnknown(Exception):
    """No valid status list can be had: the token must be refused."""


class StatusLists:
    def __init__(self, jwks: jwt.PyJWKClient, max_stale: float = 300):
        self.jwks = jwks
        self.max_stale = max_stale
        self.cache: dict[str, tuple[bytes, float, float]] = {}  # uri -> (bytes, fetched, ttl)
        self.lock = threading.Lock()

    def revoked(self, reference: dict) -> bool:
        """Whether the session of a token with this `status.status_list` has ended."""
        uri, idx = reference["uri"], int(reference["idx"])
        with self.lock:
            cached = self.cache.get(uri)
            now = time.monotonic()
            if cached is None or now - cached[1] >= cached[2]:
                try:
                    cached = self.cache[uri] = self._fetch(uri)
                except Exception as error:  # any failure: keep a recent copy, or fail closed
                    if cached is None or now - cached[1] >= self.max_stale:
                        self.cache.pop(uri, None)
                        raise StatusUnknown(f"no valid status list at {uri}: {error}") from None
                    print(f"status list {uri} could not be renewed ({error}); using the copy held", flush=True)
        data = cached[0]
        if idx // 8 >= len(data):
            raise StatusUnknown("index beyond the list")
        return (data[idx // 8] >> (idx % 8)) & 1 == 1

    def _fetch(self, uri: str) -> tuple[bytes, float, float]:
        request = urllib.request.Request(uri, headers={"Accept": "application/statuslist+jwt"})
        with urllib.request.urlopen(request, timeout=5) as response:
            token = response.read().decode()
        if jwt.get_unverified_header(token).get("typ") != "statuslist+jwt":
            raise ValueError("not a status list token")
        key = self.jwks.get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[key.algorithm_name],
            options={"require": ["sub", "iat", "exp"], "verify_aud": False},
        )
        if claims["sub"] != uri:
            raise ValueError(f"the list is not the one fetched (sub {claims['sub']})")
        status_list = claims["status_list"]
        if status_list["bits"] != 1:
            raise ValueError(f"{status_list['bits']} bits per status")
        lst = status_list["lst"]
        data = zlib.decompress(base64.urlsafe_b64decode(lst + "=" * (-len(lst) % 4)))
        ttl = min(max(float(claims.get("ttl", 300)), MIN_TTL), MAX_TTL)
        return data, time.monotonic(), ttl
