"""The steps both Authlib test clients share (authlib_client.py, authlib_lb_client.py): an
authorization with PKCE (S256) and a nonce, signing in on oauthd's page as a browser
submits its form (the `state` and RFC 9207 `iss` checked), the code exchanged and the
id_token validated against the JWKS (signature, iss, aud, exp, nonce, at_hash), and
UserInfo. Any failed check raises.
"""

import html
import os
import re
from urllib.parse import parse_qs, urlparse

# oauthd runs on plain http on loopback in the tests; Authlib refuses http without this.
os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"

from authlib.common.security import generate_token  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session  # noqa: E402
from authlib.jose import JsonWebKey, jwt  # noqa: E402
from authlib.oidc.core import CodeIDToken  # noqa: E402

TIMEOUT = 30


class CodeFlow:
    """One authorization of `client_id` at the issuer `metadata` describes."""

    def __init__(self, metadata, client_id, client_secret, redirect_uri, scope):
        self.metadata = metadata
        self.client_id = client_id
        self.session = OAuth2Session(
            client_id,
            client_secret,
            scope=scope,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
        )
        self.verifier = generate_token(48)
        self.nonce = generate_token(20)
        self.url, self.state = self.session.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=self.verifier, nonce=self.nonce
        )

    def sign_in(self, browser, email, password):
        """Signs in on oauthd's page with `browser` (a requests.Session): the page and the
        answer to its form, a redirect whose `location` carries the code."""
        page = browser.get(self.url, timeout=TIMEOUT)
        assert page.status_code == 200, page.status_code
        fields = {
            name: html.unescape(value)
            for name, value in re.findall(
                r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text
            )
        }
        fields.update({"email": email, "password": password})
        answer = browser.post(page.url, data=fields, allow_redirects=False, timeout=TIMEOUT)
        assert answer.status_code == 302, (answer.status_code, answer.text[:300])
        params = parse_qs(urlparse(answer.headers["location"]).query)
        assert params["state"] == [self.state], params
        # RFC 9207: the authorization response names its issuer.
        assert params["iss"] == [self.metadata["issuer"]], params
        return page, answer

    def tokens(self, location, http):
        """Exchanges the code in `location`: the token answer and the id_token's claims,
        validated against the JWKS (fetched with `http`)."""
        token = self.session.fetch_token(
            self.metadata["token_endpoint"],
            authorization_response=location,
            code_verifier=self.verifier,
        )
        keys = http.get(self.metadata["jwks_uri"], timeout=TIMEOUT).json()
        claims = jwt.decode(
            token["id_token"],
            JsonWebKey.import_key_set(keys),
            claims_cls=CodeIDToken,
            claims_options={"iss": {"essential": True, "value": self.metadata["issuer"]}},
            claims_params={
                "nonce": self.nonce,
                "client_id": self.client_id,
                "access_token": token["access_token"],
            },
        )
        claims.validate()
        return token, claims

    def userinfo(self):
        """UserInfo with the access token."""
        answer = self.session.get(self.metadata["userinfo_endpoint"], timeout=TIMEOUT)
        assert answer.status_code == 200, answer.text
        return answer.json()
