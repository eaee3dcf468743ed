"""An OpenID Connect client written with Authlib (Debian's python3-authlib), run by
tests/it/scale_out.rs against two oauthd instances behind nginx (round-robin): the code
flow with PKCE and a nonce through the balancer (so the sign-in page comes from one
instance and its form is posted to the other), the id_token checked against the JWKS,
UserInfo, a refresh, and a revocation that both instances, asked directly, then honour.
It prints one JSON object: what it verified and which instance (nginx's `X-Upstream`
header) answered each request through the balancer. Any failure raises.

usage: authlib_lb_client.py BALANCER CLIENT_ID CLIENT_SECRET REDIRECT_URI EMAIL PASSWORD INSTANCE_A INSTANCE_B
"""

import json
import sys
from urllib.parse import urlparse

sys.dont_write_bytecode = True  # no __pycache__ beside the tests
from authlib_flow import TIMEOUT, CodeFlow  # noqa: E402  (first: it allows plain http)
import requests  # noqa: E402

balancer, client_id, client_secret, redirect_uri, email, password, a, b = sys.argv[1:9]
served = []  # [method, path, upstream] of every request through the balancer


def note(response, *args, **kwargs):
    request = response.request
    served.append([request.method, urlparse(request.url).path, response.headers.get("x-upstream")])


browser = requests.Session()
browser.hooks["response"].append(note)
metadata = browser.get(balancer + "/.well-known/openid-configuration", timeout=TIMEOUT).json()
assert metadata["issuer"] == balancer, metadata

flow = CodeFlow(metadata, client_id, client_secret, redirect_uri, "openid email")
session = flow.session
session.hooks["response"].append(note)
# The user signs in on oauthd's page: the page from one instance, the form to the next.
page, answer = flow.sign_in(browser, email, password)
page_from, form_to = page.headers.get("x-upstream"), answer.headers.get("x-upstream")
token, claims = flow.tokens(answer.headers["location"], browser)
assert flow.userinfo()["email"] == email

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
