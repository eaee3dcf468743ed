//! The sign-in page over plain HTTP (SPEC §4.1): branding by Host, the form post, the
//! security headers of every page, error pages that never redirect, and redirected errors.
//! The same flow in a real browser is in `browser.rs`.

use serde_json::json;

use crate::flow_support::*;
use crate::support::{agent, reply, Reply};

const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0xF8, 0xCF, 0xC0, 0xF0,
    0x1F, 0x00, 0x05, 0x00, 0x01, 0xFF, 0x89, 0x99, 0x3D, 0x1D, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

pub fn authorize_query(extra: &str) -> String {
    format!("/oauth/authorize?response_type=code&client_id={CLIENT_ID}&redirect_uri=http%3A%2F%2Facme.com&state=st8{extra}")
}

fn assert_page_headers(headers: &dyn Fn(&str) -> Option<String>) {
    assert_eq!(headers("cache-control").as_deref(), Some("no-store"));
    assert_eq!(headers("x-frame-options").as_deref(), Some("DENY"));
    // `same-origin`: no referrer to other sites, and our own form posts carry `Origin`.
    assert_eq!(headers("referrer-policy").as_deref(), Some("same-origin"));
    let csp = headers("content-security-policy").unwrap_or_default();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
}

fn reply_headers(r: &Reply) -> impl Fn(&str) -> Option<String> + '_ {
    move |name| r.header(name).map(str::to_owned)
}

#[test]
fn signin_page_shows_host_brand_client_and_prefilled_email() {
    let s = seeded(&[]);
    let logo = s.o.dir.path().join("logo.png");
    std::fs::write(&logo, PNG_1X1).expect("logo");
    s.o.ok(&[
        "brand",
        "add",
        "login.acme.test",
        "--name",
        "Acme <Farms>",
        "--color",
        "#0a7d4f",
        "--logo",
        logo.to_str().expect("p"),
    ]);
    let page = get_with_host(
        &s.server,
        "Login.ACME.test:443",
        &authorize_query("&email=bbb%40grovestreams.com"),
    );
    assert_eq!(page.status, 200, "{}", page.body);
    assert_page_headers(&|n| page.header(n));
    assert!(
        page.body
            .contains("<h1 id=\"brand-name\">Acme &lt;Farms&gt;</h1>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("--brand: #0a7d4f"));
    assert!(page.body.contains("id=\"client-name\">Test App<"));
    assert!(page.body.contains("value=\"bbb@grovestreams.com\""));
    assert!(page.body.contains("name=\"password\""));
    assert!(page.body.contains("name=\"csrf_token\""));
    assert!(
        !page.body.contains("http://") || !page.body.contains("src=\"http"),
        "no external assets"
    );
    let logo_reply = get_with_host(&s.server, "login.acme.test", "/brand/logo");
    assert_eq!(logo_reply.status, 200);
    assert_eq!(
        logo_reply.header("content-type").as_deref(),
        Some("image/png")
    );
    // Another host gets the built-in look and logo.
    let plain = get_with_host(&s.server, "other.test", &authorize_query(""));
    assert!(plain.body.contains("<h1 id=\"brand-name\">oauthd</h1>"));
    let default_logo = get_with_host(&s.server, "other.test", "/brand/logo");
    assert_eq!(
        default_logo.header("content-type").as_deref(),
        Some("image/svg+xml")
    );
}

#[test]
fn signin_page_escapes_what_it_echoes() {
    let s = seeded(&[]);
    let r = reply(
        agent()
            .get(&s.server.url(&authorize_query(
                "&email=%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            )))
            .call(),
    );
    assert_eq!(r.status, 200);
    assert!(!r.body.contains("<script>alert(1)"), "{}", r.body);
    assert!(r.body.contains("&quot;&gt;&lt;script&gt;"));
}

#[test]
fn signin_untrusted_requests_get_an_error_page_and_never_a_redirect() {
    let s = seeded(&[]);
    for (query, why) in [
        ("/oauth/authorize?response_type=code&client_id=nope&redirect_uri=http%3A%2F%2Facme.com", "unknown client"),
        ("/oauth/authorize?response_type=code&redirect_uri=http%3A%2F%2Facme.com", "no client"),
        ("/oauth/authorize?response_type=code&client_id=123&redirect_uri=http%3A%2F%2Fevil.example", "unregistered redirect"),
        ("/oauth/authorize?response_type=code&client_id=123&redirect_uri=http%3A%2F%2Facme.com%2Fx", "redirect prefix"),
        ("/oauth/authorize?response_type=code&client_id=123&client_id=123", "duplicate parameter"),
    ] {
        let r = reply(agent().get(&s.server.url(query)).call());
        assert_eq!(r.status, 400, "{why}: {}", r.body);
        assert_eq!(r.header("location"), None, "{why}");
        assert!(r.header("content-type").is_some_and(|c| c.starts_with("text/html")), "{why}");
        assert_page_headers(&reply_headers(&r));
    }
}

#[test]
fn signin_uses_the_only_registered_redirect_when_omitted() {
    let s = seeded(&[]);
    let r = reply(
        agent()
            .get(
                &s.server
                    .url("/oauth/authorize?response_type=code&client_id=123"),
            )
            .call(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r
        .body
        .contains("name=\"redirect_uri\" value=\"http://acme.com\""));
}

#[test]
fn signin_protocol_errors_redirect_back_with_error_and_state() {
    let s = seeded(&[]);
    let r = reply(agent().get(&s.server.url("/oauth/authorize?response_type=token&client_id=123&redirect_uri=http%3A%2F%2Facme.com&state=st8")).call());
    assert_eq!(r.status, 302);
    let location = r.header("location").expect("location");
    assert!(
        location.starts_with("http://acme.com/?error=unsupported_response_type&error_description="),
        "{location}"
    );
    // RFC 9207: the issuer follows the state.
    assert!(location.contains("&state=st8&iss=http"), "{location}");
    let r = reply(agent().get(&s.server.url(&authorize_query("&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S512"))).call());
    assert_eq!(r.status, 302);
    assert!(r
        .header("location")
        .expect("location")
        .contains("error=invalid_request"));
}

/// GETs the page as a browser would and returns (cookie header, hidden form fields).
pub fn open_page(s: &Seeded, query: &str) -> (String, Vec<(String, String)>) {
    let r = reply(agent().get(&s.server.url(query)).call());
    assert_eq!(r.status, 200, "{}", r.body);
    page_form(&r)
}

fn post_page(
    s: &Seeded,
    cookie: Option<&str>,
    fields: &[(String, String)],
    email: &str,
    password: &str,
) -> Reply {
    let headers: Vec<(&str, &str)> = cookie.map(|c| ("cookie", c)).into_iter().collect();
    post_signin(s, &headers, fields, email, password)
}

/// POSTs the sign-in form with `headers` (e.g. the cookie, an `Origin`).
pub fn post_signin(
    s: &Seeded,
    headers: &[(&str, &str)],
    fields: &[(String, String)],
    email: &str,
    password: &str,
) -> Reply {
    let mut form: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    form.push(("email", email));
    form.push(("password", password));
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut request = agent()
        .post(&s.server.url("/oauth/authorize"))
        .header("content-type", "application/x-www-form-urlencoded");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    reply(request.send(body))
}

#[test]
fn signin_post_redirects_with_a_code_that_exchanges() {
    let s = seeded(&[]);
    let (cookie, fields) = open_page(&s, &authorize_query(""));
    let r = post_page(&s, Some(&cookie), &fields, EMAIL, PASSWORD);
    assert_eq!(r.status, 302, "{}", r.body);
    let location = r.header("location").expect("location");
    let url = url::Url::parse(location).expect("url");
    assert_eq!(url.host_str(), Some("acme.com"));
    let pairs: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(pairs.get("state").map(String::as_str), Some("st8"));
    let code = pairs.get("code").expect("code");
    assert_eq!(exchange(&s, code).status, 200);
}

#[test]
fn signin_wrong_password_rerenders_with_inline_error_and_email_kept() {
    let s = seeded(&[]);
    let (cookie, fields) = open_page(&s, &authorize_query(""));
    let r = post_page(&s, Some(&cookie), &fields, EMAIL, "wrong");
    assert_eq!(r.status, 401);
    assert_eq!(r.header("location"), None);
    assert!(r.body.contains("id=\"error\""), "{}", r.body);
    assert!(r.body.contains("value=\"bbb@grovestreams.com\""));
    assert_page_headers(&reply_headers(&r));
}

#[test]
fn signin_post_without_the_csrf_cookie_is_refused() {
    let s = seeded(&[]);
    let (_, fields) = open_page(&s, &authorize_query(""));
    let r = post_page(&s, None, &fields, EMAIL, PASSWORD);
    assert_eq!(r.status, 403);
    assert_eq!(r.header("location"), None);
    let (cookie, _) = open_page(&s, &authorize_query(""));
    let forged: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| {
            if k == "csrf_token" {
                (k.clone(), "forged".into())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    let r = post_page(&s, Some(&cookie), &forged, EMAIL, PASSWORD);
    assert_eq!(r.status, 403);
}

#[test]
fn modern_entry_point_serves_the_forwarding_page() {
    let s = seeded(&[]);
    let r = reply(agent().get(&s.server.url("/Modern/")).call());
    assert_eq!(r.status, 200);
    assert_page_headers(&reply_headers(&r));
    assert!(r.body.contains("<script src=\"/assets/modern.js\""));
    // The one layout, in the Host's look, like the sign-in page it leads to.
    assert!(
        r.body.contains("<h1 id=\"brand-name\">oauthd</h1>"),
        "{}",
        r.body
    );
    let js = reply(agent().get(&s.server.url("/assets/modern.js")).call());
    assert_eq!(js.status, 200);
    assert!(js.body.contains("/oauth/authorize?"));
    // Without JavaScript, query parameters still lead on.
    let r = reply(
        agent()
            .get(&s.server.url("/Modern/?response_type=code&client_id=123"))
            .call(),
    );
    assert!(
        r.body
            .contains("href=\"/oauth/authorize?response_type=code&amp;client_id=123\""),
        "{}",
        r.body
    );
}

#[test]
fn throttling_locks_an_account_and_a_correct_password_does_not_bypass_it() {
    let s = seeded(&[]);
    for _ in 0..5 {
        assert_eq!(
            login(&s.server, &login_body(json!({"password": "wrong"}))).status,
            401
        );
    }
    let r = login(&s.server, &login_body(json!({})));
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.json()["success"], false);
    let retry: u64 = r
        .header("retry-after")
        .expect("retry-after")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    // The browser flow shares the lock.
    let (cookie, fields) = open_page(&s, &authorize_query(""));
    let page = post_page(&s, Some(&cookie), &fields, EMAIL, PASSWORD);
    assert_eq!(page.status, 429);
    assert!(page.header("retry-after").is_some());
}
