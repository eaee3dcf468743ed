"""An OpenID Connect relying party written with Authlib (Debian's python3-authlib), run by
tests/it/oidc_authlib.rs against a live oauthd: discovery, the code flow with PKCE (S256)
and a nonce, the RFC 9207 `iss` check, id_token validation against the JWKS (signature,
iss, aud, exp, nonce, at_hash), UserInfo, and RP-initiated logout with the id_token as
`id_token_hint` (an altered hint is refused first). It prints one JSON object of what it
verified; any failure raises, so the process exits non-zero.

usage: authlib_client.py ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI EMAIL PASSWORD LOGOUT_URI
"""

import json
import sys
from urllib.parse import parse_qs, urlparse

sys.dont_write_bytecode = True  # no __pycache__ beside the tests
from authlib_flow import TIMEOUT, CodeFlow  # noqa: E402  (first: it allows plain http)
import requests  # noqa: E402
from authlib.common.security import generate_token  # noqa: E402

issuer, client_id, client_secret, redirect_uri, email, password, logout_uri = sys.argv[1:8]

metadata = requests.get(issuer + "/.well-known/openid-configuration", timeout=TIMEOUT).json()
assert metadata["issuer"] == issuer, metadata
assert "none" not in metadata["id_token_signing_alg_values_supported"], metadata

flow = CodeFlow(metadata, client_id, client_secret, redirect_uri, "openid email profile groups")
session = flow.session
# The user signs in on oauthd's page: a browser submits the form with its hidden fields.
browser = requests.Session()
_, answer = flow.sign_in(browser, email, password)
token, claims = flow.tokens(answer.headers["location"], requests)
userinfo = flow.userinfo()
assert userinfo["sub"] == claims["sub"], (userinfo, dict(claims))

# RP-initiated logout: the end_session_endpoint with the id_token as hint. A hint whose
# signature does not match (one character in its middle changed) is refused, no redirect.
end_session = metadata["end_session_endpoint"]
id_token = token["id_token"]
signed, signature = id_token.rsplit(".", 1)
mid = len(signature) // 2
flipped = "A" if signature[mid] != "A" else "B"
forged = signed + "." + signature[:mid] + flipped + signature[mid + 1:]
refused = browser.get(
    end_session,
    params={"id_token_hint": forged, "post_logout_redirect_uri": logout_uri, "state": "bye1"},
    allow_redirects=False,
    timeout=TIMEOUT,
)
assert refused.status_code == 400 and "location" not in refused.headers, refused.status_code
logout = browser.get(
    end_session,
    params={"id_token_hint": id_token, "post_logout_redirect_uri": logout_uri, "state": "bye2"},
    allow_redirects=False,
    timeout=TIMEOUT,
)
assert logout.status_code == 302, (logout.status_code, logout.text[:300])
back = logout.headers["location"]
assert back.startswith(logout_uri) and parse_qs(urlparse(back).query)["state"] == ["bye2"], back
# The browser's session has ended: a silent authorization now needs a sign-in.
silent_url, _ = session.create_authorization_url(
    metadata["authorization_endpoint"], code_verifier=generate_token(48), prompt="none"
)
silent = browser.get(silent_url, allow_redirects=False, timeout=TIMEOUT)
assert silent.status_code == 302, silent.status_code
assert parse_qs(urlparse(silent.headers["location"]).query)["error"] == ["login_required"]

print(
    json.dumps(
        {
            "validated": True,
            "alg": claims.header["alg"],
            "id_token": dict(claims),
            "userinfo": userinfo,
            "logged_out": True,
        }
    )
)
