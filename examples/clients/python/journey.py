"""Sign up, log in, read the user, refresh, log out — through a client
generated from latchkey's OpenAPI document by openapi-python-client:

    pip install -r requirements.txt
    openapi-python-client generate --path ../../../openapi/openapi.json \\
        --config config.yaml --output-path build/latchkey-client
    PYTHONPATH=build/latchkey-client LATCHKEY_URL=http://127.0.0.1:8080 python journey.py

Run it against a latchkey started with LATCHKEY_REQUIRE_EMAIL_VERIFICATION=false.
"""

import os
import uuid

from latchkey_client import AuthenticatedClient, Client
from latchkey_client.api.auth import login, logout, refresh, signup
from latchkey_client.api.users import get_current_user
from latchkey_client.models import LoginRequest, Problem, RefreshRequest, SignupRequest, TokenResponse, User

base_url = os.environ.get("LATCHKEY_URL", "http://127.0.0.1:8080")
client = Client(base_url=base_url, raise_on_unexpected_status=True)
email = f"py-{uuid.uuid4().hex}@example.com"
password = "Correct1Horse"


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"journey failed: {what}")


accepted = signup.sync_detailed(client=client, body=SignupRequest(email=email, password=password, name="Python"))
expect(accepted.status_code == 202, f"signup answered {accepted.status_code}")

tokens = login.sync(client=client, body=LoginRequest(email=email, password=password))
expect(isinstance(tokens, TokenResponse), f"login answered {tokens}")
expect(tokens.token_type == "Bearer" and tokens.expires_in > 0, "a bearer token response")

signed_in = AuthenticatedClient(base_url=base_url, token=tokens.access_token, raise_on_unexpected_status=True)
me = get_current_user.sync(client=signed_in)
expect(isinstance(me, User) and me.email == email and me.name == "Python", f"users/me answered {me}")

rotated = refresh.sync(client=client, body=RefreshRequest(refresh_token=tokens.refresh_token))
expect(isinstance(rotated, TokenResponse), f"refresh answered {rotated}")
expect(rotated.refresh_token != tokens.refresh_token, "refresh rotates the refresh token")
expect(rotated.session_id == tokens.session_id, "the same session")

signed_in = AuthenticatedClient(base_url=base_url, token=rotated.access_token, raise_on_unexpected_status=True)
ended = logout.sync_detailed(client=signed_in)
expect(ended.status_code == 204, f"logout answered {ended.status_code}")

refused = refresh.sync(client=client, body=RefreshRequest(refresh_token=rotated.refresh_token))
expect(isinstance(refused, Problem) and refused.code == "invalid_refresh_token", f"refresh after logout: {refused}")

print(f"python journey ok: {email}")
