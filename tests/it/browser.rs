//! The sign-in flow in a real browser: headless Debian Chromium, driven over WebDriver,
//! opens the GroveStreams-style `/Modern/#signinoauth/?…` URL on a branded host, signs in,
//! and lands on the client's redirect URI with a code that the token endpoint accepts.
//!
//! The branded host `login.acme-brand.test` is mapped to 127.0.0.1 inside Chromium only
//! (`--host-resolver-rules`), so the request's Host header carries the brand's domain
//! while the traffic never leaves loopback.

use base64::Engine;

use crate::support::{agent, reply, solid_png, Oauthd, Server};
use crate::webdriver::{target_dir, Browser};

const BRAND_HOST: &str = "login.acme-brand.test";
const EMAIL: &str = "alice@example.com";
const PASSWORD: &str = "correct horse battery staple";
const CLIENT_ID: &str = "alexa-skill";
const STATE: &str = "xyz123";

/// The WebDriver plumbing on its own: driver and session start, Chromium resolves the
/// branded host to loopback, navigation works, and the page text can be read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_opens_healthz_on_the_branded_host() {
    let o = Oauthd::new();
    let server = o.serve(&[]);
    let Some(browser) = Browser::start("healthz", &[BRAND_HOST]).await else {
        return;
    };

    let url = format!("http://{BRAND_HOST}:{}/healthz", server.addr.port());
    browser.goto(&url).await;
    assert_eq!(browser.text("body").await.trim(), "ok");
    assert_eq!(browser.current_url().await.as_str(), url);

    // The hand-made PNG the brand tests upload decodes in a real browser.
    let png =
        base64::engine::general_purpose::STANDARD.encode(solid_png(48, 48, [0x0a, 0x7d, 0x4f]));
    browser
        .goto(&format!(
            "data:text/html,<img id=logo src='data:image/png;base64,{png}'>"
        ))
        .await;
    let width = browser
        .js(
            "the data: PNG to load",
            "const i = document.getElementById('logo'); return i.complete ? i.naturalWidth : null;",
        )
        .await;
    assert_eq!(width, 48);
    // Screenshots work too (the sign-in scenario saves one for a human to look at).
    browser
        .screenshot(&target_dir().join("browser-plumbing-screenshot.png"))
        .await;
    browser.quit().await;

    let logs = server.logs();
    assert!(
        logs.contains("/healthz"),
        "the request reached oauthd: {logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_signin_shows_brand_and_redirects_with_a_working_code() {
    let o = Oauthd::new();
    let Some(browser) = Browser::start("signin", &[BRAND_HOST]).await else {
        return;
    };
    let site = Site::seed(&o);

    browser.goto(&site.modern_url()).await;
    assert_branded_signin_page(&browser, &site).await;
    browser
        .screenshot(&target_dir().join("signin-screenshot.png"))
        .await;

    browser.type_into("input[name=password]", PASSWORD).await;
    browser.click("button#signin").await;
    let landed = browser.url_starting_with(&site.redirect_uri).await;
    browser.quit().await;

    let query: Vec<(String, String)> = landed.query_pairs().into_owned().collect();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(param("state").as_deref(), Some(STATE), "{landed}");
    let code = param("code").unwrap_or_else(|| panic!("no code in {landed}"));

    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{}", site.secret));
    let body = form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", &site.redirect_uri),
    ]);
    let r = reply(
        agent()
            .post(&site.server.url("/api/oauth_access_token"))
            .header("Authorization", &format!("Basic {basic}"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send(&body),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let token = r.json();
    assert_eq!(token["token_type"], "bearer", "{token}");
    assert_eq!(token["expires_in"], 86400, "{token}");
    assert!(token["refresh_token"].is_string(), "{token}");
    let access_token = token["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access_token: {token}"));

    let r = reply(
        agent()
            .get(&site.server.url("/api/me"))
            .header("Authorization", &format!("Bearer {access_token}"))
            .call(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["email"], EMAIL, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_signin_with_a_wrong_password_shows_an_inline_error() {
    let o = Oauthd::new();
    let Some(browser) = Browser::start("wrong-password", &[BRAND_HOST]).await else {
        return;
    };
    let site = Site::seed(&o);

    browser.goto(&site.modern_url()).await;
    assert_branded_signin_page(&browser, &site).await;
    browser
        .type_into("input[name=password]", "not the password")
        .await;
    browser.click("button#signin").await;

    let error = browser.text("#error").await;
    assert!(!error.trim().is_empty());
    assert_eq!(browser.prop("input[name=email]", "value").await, EMAIL);
    let url = browser.current_url().await;
    assert!(
        !url.as_str().starts_with(&site.redirect_uri),
        "navigated to the client: {url}"
    );
    assert_eq!(url.host_str(), Some(BRAND_HOST), "{url}");
    browser.quit().await;
}

/// What the browser should show before the user types anything.
async fn assert_branded_signin_page(browser: &Browser, site: &Site) {
    assert_eq!(browser.text("#brand-name").await.trim(), "Acme Brand");
    let url = browser.current_url().await;
    assert_eq!(
        url.host_str(),
        Some(BRAND_HOST),
        "the shim keeps the branded host: {url}"
    );
    assert_eq!(url.port(), Some(site.server.addr.port()), "{url}");
    assert_eq!(
        url.path(),
        "/oauth/authorize",
        "the shim continues to /oauth/authorize: {url}"
    );

    let logo_src = browser.prop("img#brand-logo", "src").await;
    assert!(logo_src.ends_with("/brand/logo"), "logo src {logo_src}");
    let width = browser
        .js(
            "the brand logo to load",
            "const img = document.querySelector('img#brand-logo'); \
             return img && img.complete && img.naturalWidth > 0 ? img.naturalWidth : null;",
        )
        .await;
    assert!(
        width.as_u64().is_some_and(|w| w > 0),
        "naturalWidth {width}"
    );

    assert_eq!(browser.text("#client-name").await.trim(), "Test App");
    assert_eq!(browser.prop("input[name=email]", "value").await, EMAIL);
}

/// A running oauthd with the Acme brand, alice, and the Alexa-style confidential client
/// whose redirect URI is on the branded host at the server's own port (oauthd answers
/// `/callback` with 404, which is fine: the test only reads the URL).
struct Site {
    server: Server,
    redirect_uri: String,
    secret: String,
}

impl Site {
    fn seed(o: &Oauthd) -> Site {
        let logo = o.dir.path().join("acme-logo.png");
        std::fs::write(&logo, solid_png(48, 48, [0x0a, 0x7d, 0x4f])).expect("write logo");
        let logo = logo.to_str().expect("utf-8 temp path");
        o.ok(&[
            "brand",
            "add",
            BRAND_HOST,
            "--name",
            "Acme Brand",
            "--color",
            "#0a7d4f",
            "--logo",
            logo,
        ]);
        o.add_user(EMAIL, PASSWORD);
        // The redirect URI names the server's port, known only once it listens; the CLI and
        // the running server share the database file, so the client is added afterwards.
        let server = o.serve(&[]);
        let redirect_uri = format!("http://{BRAND_HOST}:{}/callback", server.addr.port());
        let secret = o.add_client(CLIENT_ID, &[&redirect_uri]);
        Site {
            server,
            redirect_uri,
            secret,
        }
    }

    /// The seed's authorization URL: parameters after the `#`, which browsers never send.
    fn modern_url(&self) -> String {
        let params = form(&[
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", &self.redirect_uri),
            ("state", STATE),
            ("email", EMAIL),
        ]);
        format!(
            "http://{BRAND_HOST}:{}/Modern/#signinoauth/?{params}",
            self.server.addr.port()
        )
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        serializer.append_pair(k, v);
    }
    serializer.finish()
}
