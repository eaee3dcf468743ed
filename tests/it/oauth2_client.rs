//! A real OAuth client library nobody here wrote — the `oauth2` crate — runs the
//! authorization code flow with PKCE and refreshes against oauthd; and an Amazon
//! Alexa-style account linking exchange (HTTP Basic, form body, Amazon's redirect URIs).

use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, RedirectUrl,
    RefreshToken, Scope, TokenResponse, TokenUrl,
};

use crate::flow_support::*;
use crate::support::{agent, reply, Oauthd};

/// The oauth2 crate's HTTP calls, carried by ureq (no redirects followed, as it expects).
fn http_client(request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, std::io::Error> {
    let response = agent().run(request).map_err(std::io::Error::other)?;
    let (parts, mut body) = response.into_parts();
    let bytes = body.read_to_vec().map_err(std::io::Error::other)?;
    Ok(oauth2::HttpResponse::from_parts(parts, bytes))
}

/// Plays the user at the sign-in page: opens `authorize_url`, posts the form with the
/// password, and returns the redirect's query pairs.
fn sign_in_at(
    authorize_url: &str,
    email: &str,
    password: &str,
) -> std::collections::HashMap<String, String> {
    let page = reply(agent().get(authorize_url).call());
    assert_eq!(page.status, 200, "{}", page.body);
    let (cookie, mut form) = page_form(&page);
    form.push(("email".into(), email.into()));
    form.push(("password".into(), password.into()));
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&form)
        .finish();
    let origin = url::Url::parse(authorize_url).expect("url");
    let post_url = format!(
        "{}://{}/oauth/authorize",
        origin.scheme(),
        origin
            .host_str()
            .zip(origin.port())
            .map(|(h, p)| format!("{h}:{p}"))
            .expect("host")
    );
    let r = reply(
        agent()
            .post(&post_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", &cookie)
            .send(body),
    );
    assert_eq!(r.status, 302, "{}", r.body);
    let location = url::Url::parse(r.header("location").expect("location")).expect("redirect url");
    location.query_pairs().into_owned().collect()
}

#[test]
fn oauth2_crate_runs_code_flow_with_pkce_and_refresh() {
    let o = Oauthd::new();
    o.add_user("carol@example.com", "hunter22");
    let redirect = "http://127.0.0.1:9/callback";
    o.add_public_client("native-app", &[redirect], &["--require-pkce"]);
    let server = o.serve(&[]);
    let client = BasicClient::new(ClientId::new("native-app".into()))
        .set_auth_uri(AuthUrl::new(server.url("/oauth/authorize")).expect("auth url"))
        .set_token_uri(TokenUrl::new(server.url("/oauth/token")).expect("token url"))
        .set_redirect_uri(RedirectUrl::new(redirect.into()).expect("redirect"));
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, csrf_state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("read".into()))
        .set_pkce_challenge(challenge)
        .url();
    let answer = sign_in_at(authorize_url.as_str(), "carol@example.com", "hunter22");
    assert_eq!(answer.get("state"), Some(csrf_state.secret()));
    let code = answer.get("code").expect("code").clone();
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request(&http_client)
        .expect("code exchange through the oauth2 crate");
    assert_eq!(tokens.token_type(), &oauth2::basic::BasicTokenType::Bearer);
    assert_eq!(
        tokens.expires_in(),
        Some(std::time::Duration::from_secs(86400))
    );
    assert_eq!(
        tokens.scopes().map(|s| s[0].to_string()).as_deref(),
        Some("read")
    );
    let me = get_bearer(&server, "/api/me", tokens.access_token().secret());
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["email"], "carol@example.com");
    let first_refresh = tokens.refresh_token().expect("refresh token").clone();
    let refreshed = client
        .exchange_refresh_token(&first_refresh)
        .request(&http_client)
        .expect("refresh through the oauth2 crate");
    let rotated = refreshed.refresh_token().expect("rotated refresh token");
    assert_ne!(
        rotated.secret(),
        first_refresh.secret(),
        "a public client's refresh token rotates"
    );
    assert_eq!(
        get_bearer(&server, "/api/me", refreshed.access_token().secret()).status,
        200
    );
    let again = client
        .exchange_refresh_token(rotated)
        .request(&http_client)
        .expect("second refresh");
    assert_eq!(
        get_bearer(&server, "/api/me", again.access_token().secret()).status,
        200
    );
}

#[test]
fn oauth2_crate_reports_a_wrong_verifier_as_invalid_grant() {
    let o = Oauthd::new();
    o.add_user("carol@example.com", "hunter22");
    let redirect = "http://127.0.0.1:9/callback";
    let secret = o.add_client("web-app", &[redirect]);
    let server = o.serve(&[]);
    let client = BasicClient::new(ClientId::new("web-app".into()))
        .set_client_secret(ClientSecret::new(secret))
        .set_auth_uri(AuthUrl::new(server.url("/oauth/authorize")).expect("auth url"))
        .set_token_uri(TokenUrl::new(server.url("/oauth/token")).expect("token url"))
        .set_redirect_uri(RedirectUrl::new(redirect.into()).expect("redirect"));
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (_, wrong_verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, _) = client
        .authorize_url(CsrfToken::new_random)
        .set_pkce_challenge(challenge)
        .url();
    let answer = sign_in_at(authorize_url.as_str(), "carol@example.com", "hunter22");
    let error = client
        .exchange_code(AuthorizationCode::new(answer["code"].clone()))
        .set_pkce_verifier(wrong_verifier)
        .request(&http_client)
        .expect_err("a wrong verifier must fail");
    match error {
        oauth2::RequestTokenError::ServerResponse(response) => {
            assert_eq!(
                response.error(),
                &oauth2::basic::BasicErrorResponseType::InvalidGrant
            );
        }
        other => panic!("expected invalid_grant, got {other:?}"),
    }
}

/// Amazon's account-linking redirect URIs (one per region).
const AMAZON_REDIRECTS: [&str; 3] = [
    "https://pitangui.amazon.com/api/skill/link/M2AAAAAAAAAAAA",
    "https://layla.amazon.com/api/skill/link/M2AAAAAAAAAAAA",
    "https://alexa.amazon.co.jp/api/skill/link/M2AAAAAAAAAAAA",
];

#[test]
fn alexa_style_account_linking_exchange_and_refresh() {
    let o = Oauthd::new();
    o.add_user("dave@example.com", "correct horse");
    let secret = o.add_client("alexa-skill", &AMAZON_REDIRECTS);
    let server = o.serve(&[]);
    for redirect in AMAZON_REDIRECTS {
        // Alexa opens the authorization URL (GroveStreams style) with its state.
        let url = format!(
            "{}?response_type=code&client_id=alexa-skill&state=AmazonState123&redirect_uri={}",
            server.url("/oauth/authorize"),
            form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
        );
        let answer = sign_in_at(&url, "dave@example.com", "correct horse");
        assert_eq!(answer["state"], "AmazonState123");
        // Amazon's token call: HTTP Basic, form body, the same redirect_uri.
        let r = post_form(
            &server,
            "/api/oauth_access_token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &answer["code"]),
                ("redirect_uri", redirect),
            ],
            Some(&basic("alexa-skill", &secret)),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        assert_eq!(v["token_type"], "bearer");
        let refresh_token = v["refresh_token"].as_str().expect("rt").to_owned();
        // Amazon refreshes with the same refresh token again and again; it must keep working.
        for _ in 0..3 {
            let r = post_form(
                &server,
                "/api/oauth_access_token",
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &refresh_token),
                ],
                Some(&basic("alexa-skill", &secret)),
            );
            assert_eq!(r.status, 200, "{}", r.body);
            assert_eq!(r.json()["refresh_token"], refresh_token.as_str());
            assert_eq!(
                get_bearer(
                    &server,
                    "/api/me",
                    r.json()["access_token"].as_str().expect("at")
                )
                .status,
                200
            );
        }
    }
}

#[test]
fn oauth2_crate_refresh_token_type_is_usable_as_seed_refresh() {
    // The seed's refresh call, made through the library's RefreshToken type.
    let s = seeded(&[]);
    let code = login_code(&s.server, serde_json::json!({}));
    let v = exchange(&s, &code).json();
    let client = BasicClient::new(ClientId::new(CLIENT_ID.into()))
        .set_client_secret(ClientSecret::new(s.secret.clone()))
        .set_token_uri(TokenUrl::new(s.server.url("/api/oauth_access_token")).expect("token url"));
    let refreshed = client
        .exchange_refresh_token(&RefreshToken::new(
            v["refresh_token"].as_str().expect("rt").into(),
        ))
        .request(&http_client)
        .expect("refresh");
    assert_eq!(
        refreshed.refresh_token().map(|t| t.secret().as_str()),
        v["refresh_token"].as_str()
    );
}
