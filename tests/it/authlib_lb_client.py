"""An OpenID Connect client written with Authlib (Debian's python3-authlib), run by
tests/it/scale_out.rs against two oauthd instances behind nginx (round-robin): the code
flow with PKCE and a nonce through the balancer (so the sign-in page comes from one
instance and its form is posted to the other), the id_token checked against the JWKS,
UserInfo, a refresh, and a revocation that both instances, asked directly, then honour.
It prints one JSON object: what it verified and which instance (nginx's `X-Upstream`
header) answered each request through the balancer. Any failure raises.

usage: authlib_lb_client.py BALANCER CLIENT_ID CLIENT_SECRET REDIRECT_URI EMAIL PASSWORD INSTANCE_A INSTANCE_B
"""

import html
import json
import os
import re
import sys
from urllib.parse import parse_qs, urlparse

# Plain http on loopback in the test; Authlib refuses http without this.
os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"

import requests  # noqa: E402
from authlib.common.security import generate_token  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session  # noqa: E402
from authlib.jose import JsonWebKey, jwt  # noqa: E402
from authlib.oidc.core import CodeIDToken  # noqa: E402

balancer, client_id, client_secret, redirect_uri, email, password, a, b = sys.argv[1:9]
TIMEOUT = 30
served = []  # [method, path, upstream] of every request through the balancer


def note(response, *args, **kwargs):
    request = response.request
    served.append([request.method, urlparse(request.url).path, response.headers.get("x-upstream")])


browser = requests.Session()
browser.hooks["response"].append(note)
metadata = browser.get(balancer + "/.well-known/openid-configuration", timeout=TIMEOUT).json()
assert metadata["issuer"] == balancer, metadata

session = OAuth2Session(
    client_id,
    client_secret,
    scope="openid email",
    redirect_uri=redirect_uri,
    code_challenge_method="S256",
)
session.hooks["response"].append(note)
verifier = generate_token(48)
nonce = generate_token(20)
url, state = session.create_authorization_url(
    metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
)

# The user signs in on oauthd's page: the page from one instance, the form to the next.
page = browser.get(url, timeout=TIMEOUT)
assert page.status_code == 200, page.status_code
page_from = served[-1][2]
fields = {
    name: html.unescape(value)
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text)
}
fields.update({"email": email, "password": password})
answer = browser.post(page.url, data=fields, allow_redirects=False, timeout=TIMEOUT)
assert answer.status_code == 302, (answer.status_code, answer.text[:300])
form_to = served[-1][2]
location = answer.headers["location"]
params = parse_qs(urlparse(location).query)
assert params["state"] == [state], params
assert params["iss"] == [balancer], params

token = session.fetch_token(
    metadata["token_endpoint"], authorization_response=location, code_verifier=verifier
)
jwks = JsonWebKey.import_key_set(browser.get(metadata["jwks_uri"], timeout=TIMEOUT).json())
claims = jwt.decode(
    token["id_token"],
    jwks,
    claims_cls=CodeIDToken,
    claims_options={"iss": {"essential": True, "value": balancer}},
    claims_params={"nonce": nonce, "client_id": client_id, "access_token": token["access_token"]},
)
claims.validate()
userinfo = session.get(metadata["userinfo_endpoint"], timeout=TIMEOUT)
assert userinfo.status_code == 200, userinfo.text
assert userinfo.json()["email"] == email, userinfo.text

refreshed = session.refresh_token(metadata["token_endpoint"], refresh_token=token["refresh_token"])
assert refreshed["access_token"] != token["access_token"]
# A confidential client keeps its refresh token (only public clients rotate theirs).


def me_status(instance):
    bearer = {"authorization": "Bearer " + refreshed["access_token"]}
    return requests.get(instance + "/api/me", headers=bearer, timeout=TIMEOUT).status_code


live_before = [me_status(a), me_status(b)]
revoked = session.revoke_token(
    metadata["revocation_endpoint"], token=refreshed["refresh_token"], token_type_hint="refresh_token"
)
assert revoked.status_code == 200, revoked.text
# Revoking the refresh token ends the grant: each instance, asked directly, refuses its
# access token and its refresh token at once.
after_revocation = [me_status(a), me_status(b)]
refresh_after = []
for instance in (a, b):
    r = requests.post(
        instance + "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"]},
        auth=(client_id, client_secret),
        timeout=TIMEOUT,
    )
    refresh_after.append([r.status_code, r.json().get("error")])

print(
    json.dumps(
        {
            "validated": True,
            "email": claims["email"],
            "page_from": page_from,
            "form_to": form_to,
            "served": served,
            "live_before": live_before,
            "after_revocation": after_revocation,
            "refresh_after_revocation": refresh_after,
        }
    )
)
