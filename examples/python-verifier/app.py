"""A FastAPI service that protects GET /protected with latchkey access tokens,
configured with nothing but the issuer URL and the audience:

    pip install -r requirements.txt
    ISSUER=http://127.0.0.1:8080 AUDIENCE=latchkey uvicorn app:app --port 8082

PyJWKClient fetches the keys from the issuer's `jwks_uri`, caches them, and
fetches again when a token names a key it does not know (after a rotation),
at most once per cooldown, so made-up `kid`s cannot flood the issuer. A token
whose session has ended (logout, revocation …) is refused through the status
list it names (`status_list.py`).
"""

import json
import os
import urllib.request

import jwt
from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from status_list import StatusLists, StatusUnknown

ISSUER = os.environ["ISSUER"].rstrip("/")
AUDIENCE = os.environ.get("AUDIENCE", "latchkey")

with urllib.request.urlopen(f"{ISSUER}/.well-known/openid-configuration", timeout=5) as response:
    discovery = json.load(response)
if discovery["issuer"] != ISSUER:
    raise SystemExit(f"the discovery document names another issuer: {discovery['issuer']}")

jwks = jwt.PyJWKClient(
    discovery["jwks_uri"],
    cache_jwk_set=True,
    lifespan=300,
    timeout=5,
    cooldown_duration=int(os.environ.get("JWKS_COOLDOWN_MS", "30000")) / 1000,
)
# How long a verified status list is still used when it cannot be renewed.
status_lists = StatusLists(jwks, max_stale=float(os.environ.get("STATUS_LIST_MAX_STALE_SECS", "300")))
bearer = HTTPBearer(auto_error=False)
app = FastAPI(title="python-verifier")


def invalid_token() -> HTTPException:
    return HTTPException(401, detail="invalid_token", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def access_claims(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> dict:
    """The verified claims of the bearer token, or a 401."""
    if credentials is None:
        raise invalid_token()
    token = credentials.credentials
    try:
        if jwt.get_unverified_header(token).get("typ", "").lower() != "at+jwt":
            raise invalid_token()
        key = jwks.get_signing_key_from_jwt(token)
        # One algorithm: the one the key was published with, never the header's choice.
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[key.algorithm_name],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=60,
            options={"require": ["exp", "iss", "aud", "sub", "status"]},
        )
        if status_lists.revoked(claims["status"]["status_list"]):
            raise StatusUnknown("the session has ended")
        return claims
    except (jwt.PyJWTError, jwt.PyJWKClientError, StatusUnknown, KeyError, TypeError, ValueError) as error:
        print(f"token refused: {error}", flush=True)
        raise invalid_token() from None


@app.get("/protected")
def protected(claims: dict = Depends(access_claims)) -> dict:
    return {"sub": claims["sub"], "email": claims.get("email"), "sid": claims.get("sid")}
