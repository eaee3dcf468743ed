//! The consent screen of third-party clients over plain HTTP: asked once per user and
//! client (after the sign-in form and when the session skips it), again for a wider
//! scope and after revoking the app on /account; Deny → `access_denied`; `prompt=none`
//! → `consent_required`; first-party clients never ask.

use crate::account_page::{get_account, post_account};
use crate::flow_support::*;
use crate::sessions::{assert_code, assert_error, authorize, location_param};
use crate::signin_page::{authorize_query, open_page, post_signin};
use crate::support::{agent, reply, Oauthd, Reply};

/// The seed's user and client, the client registered as third-party.
pub fn third_party() -> Seeded {
    let o = Oauthd::new();
    o.add_user(EMAIL, PASSWORD);
    let secret = add_third_party(&o, CLIENT_ID, REDIRECT);
    let server = o.serve(&[]);
    Seeded { o, server, secret }
}

/// Registers "Test App" as a third-party client (`--first-party false`); its secret.
pub fn add_third_party(o: &Oauthd, id: &str, redirect_uri: &str) -> String {
    let value = o.json(&[
        "client",
        "add",
        "--name",
        "Test App",
        "--id",
        id,
        "--redirect-uri",
        redirect_uri,
        "--first-party",
        "false",
    ]);
    value["client_secret"].as_str().expect("secret").to_owned()
}

/// `name=value` of the `Set-Cookie` header whose name starts with `prefix`.
fn cookie(r: &Reply, prefix: &str) -> Option<String> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with(prefix))
        .map(str::to_owned)
}

/// Signs in on the page for `scope`; returns the answer (the consent screen for a
/// third-party client) and the new session cookie.
pub fn sign_in_for(s: &Seeded, scope: &str) -> (Reply, String) {
    let (csrf, fields) = open_page(s, &authorize_query(&format!("&scope={scope}")));
    let r = post_signin(s, &[("cookie", &csrf)], &fields, EMAIL, PASSWORD);
    let session = cookie(&r, "oauthd_session=").expect("session cookie");
    (r, session)
}

/// The answer is the consent screen listing `scopes`.
pub fn assert_consent_page(r: &Reply, scopes: &[&str], what: &str) {
    assert_eq!(r.status, 200, "{what}: {:?}", r.header("location"));
    assert!(r.body.contains("id=\"allow\""), "{what}: {}", r.body);
    assert!(!r.body.contains("name=\"password\""), "{what}");
    for scope in scopes {
        let item = format!("<li class=\"scope\">{scope}</li>");
        assert!(r.body.contains(&item), "{what}: {scope} in {}", r.body);
    }
}

/// Answers the consent screen `page` (`allow` or `deny`) as its browser would.
pub fn answer(s: &Seeded, page: &Reply, session: &str, choice: &str) -> Reply {
    let csrf = cookie(page, "oauthd_csrf").expect("csrf cookie");
    let (_, fields) = page_form(page);
    let mut form: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    form.push(("consent", choice));
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    reply(
        agent()
            .post(&s.server.url("/oauth/authorize"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", &format!("{csrf}; {session}"))
            .send(body),
    )
}

#[test]
fn a_third_party_client_asks_once_then_again_for_more_scope_or_after_revoke() {
    let s = third_party();
    let (page, session) = sign_in_for(&s, "openid%20email");
    assert_consent_page(&page, &["openid", "email"], "after the sign-in form");
    assert!(page.body.contains("Test App"), "{}", page.body);

    // Without the page's CSRF cookie the answer is refused and nothing is stored.
    let (_, fields) = page_form(&page);
    let mut forged: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    forged.push(("consent", "allow"));
    let r = post_form(&s.server, "/oauth/authorize", &forged, None);
    assert_ne!(r.status, 302, "{}", r.body);

    assert_code(&s, &answer(&s, &page, &session, "allow"), "allowed");
    // Asked once: the session's next request (same or fewer scopes) gets a code at once.
    let again = authorize(&s, Some(&session), "&scope=openid%20email");
    assert_code(&s, &again, "same scope, consent stored");
    assert_code(&s, &authorize(&s, Some(&session), "&scope=email"), "fewer");
    // prompt=consent asks again; so does a scope beyond the stored ones.
    let forced = authorize(&s, Some(&session), "&scope=openid&prompt=consent");
    assert_consent_page(&forced, &["openid"], "prompt=consent");
    let wider = authorize(&s, Some(&session), "&scope=openid%20profile");
    assert_consent_page(
        &wider,
        &["openid", "profile"],
        "a wider scope, from the session",
    );
    assert_code(&s, &answer(&s, &wider, &session, "allow"), "wider allowed");
    let stored = authorize(&s, Some(&session), "&scope=email%20profile");
    assert_code(&s, &stored, "the stored scope grew and kept email");

    // Revoking the app on the account page forgets the consent.
    let account = get_account(&s, &session);
    let r = post_account(
        &s,
        &session,
        &account,
        &[("op", "revoke"), ("client_id", CLIENT_ID)],
    );
    assert_eq!(r.status, 302, "{}", r.body);
    let after = authorize(&s, Some(&session), "&scope=openid");
    assert_consent_page(&after, &["openid"], "after revoking the app");
}

#[test]
fn deny_redirects_with_access_denied_and_prompt_none_needs_consent() {
    let s = third_party();
    let (page, session) = sign_in_for(&s, "openid");
    assert_consent_page(&page, &["openid"], "after the sign-in form");
    let denied = answer(&s, &page, &session, "deny");
    assert_error(&denied, "access_denied", "deny");
    assert!(
        location_param(&denied, "iss").is_some(),
        "iss on the redirect"
    );
    // Denying stores nothing: the next request asks again, prompt=none refuses.
    let r = authorize(&s, Some(&session), "&scope=openid");
    assert_consent_page(&r, &["openid"], "asked again after deny");
    let none = authorize(&s, Some(&session), "&scope=openid&prompt=none");
    assert_error(&none, "consent_required", "prompt=none without consent");
    assert!(
        location_param(&none, "iss").is_some(),
        "iss on the redirect"
    );
    // Once allowed, prompt=none answers with a code.
    assert_code(&s, &answer(&s, &r, &session, "allow"), "allowed");
    let none = authorize(&s, Some(&session), "&scope=openid&prompt=none");
    assert_code(&s, &none, "prompt=none with consent");
}

#[test]
fn a_first_party_client_never_asks() {
    let s = seeded(&[]);
    let (csrf, fields) = open_page(&s, &authorize_query("&scope=openid"));
    let r = post_signin(&s, &[("cookie", &csrf)], &fields, EMAIL, PASSWORD);
    assert_code(&s, &r, "after the sign-in form");
    let session = cookie(&r, "oauthd_session=").expect("session cookie");
    let r = authorize(&s, Some(&session), "&scope=openid%20email&prompt=none");
    assert_code(&s, &r, "from the session, prompt=none");
}
