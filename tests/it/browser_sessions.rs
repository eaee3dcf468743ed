//! Browser sessions in a real headless Chromium: a sign-in on the page sets the session
//! cookie, so the next authorization lands on the client without the form; `prompt=login`
//! and `max_age=0` show the form again, `prompt=none` answers from the session, and
//! RP-initiated logout ends it (after which `prompt=none` is `login_required`).

use crate::flow_support::{basic, post_form};
use crate::support::Oauthd;
use crate::webdriver::Browser;

const HOST: &str = "sso.oauthd.test";
const EMAIL: &str = "carol@example.com";
const PASSWORD: &str = "correct horse battery staple";
const CLIENT_ID: &str = "sso-app";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_session_skips_the_form_until_prompt_max_age_or_logout() {
    let o = Oauthd::new();
    let Some(browser) = Browser::start("sessions", &[HOST]).await else {
        return;
    };
    o.add_user(EMAIL, PASSWORD);
    let server = o.serve(&[]);
    let base = format!("http://{HOST}:{}", server.addr.port());
    let callback = format!("{base}/callback");
    let bye = format!("{base}/bye");
    let client = o.json(&[
        "client",
        "add",
        "--name",
        "SSO App",
        "--id",
        CLIENT_ID,
        "--redirect-uri",
        &callback,
        "--post-logout-redirect-uri",
        &bye,
    ]);
    let authorize = |state: &str, extra: &str| {
        format!(
            "{base}/oauth/authorize?response_type=code&client_id={CLIENT_ID}&state={state}{extra}"
        )
    };

    // First visit: the form; signing in lands on the client with a code, which the
    // client exchanges for an id_token (the logout hint below).
    browser.goto(&authorize("first", "&scope=openid")).await;
    browser.type_into("input[name=email]", EMAIL).await;
    browser.type_into("input[name=password]", PASSWORD).await;
    browser.click("button#signin").await;
    let landed = landed_with(&browser, &callback, "first").await;
    let code = landed
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code: {landed}"));
    let secret = client["client_secret"].as_str().expect("secret");
    let tokens = post_form(
        &server,
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &callback),
        ],
        Some(&basic(CLIENT_ID, secret)),
    );
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let hint = tokens.json()["id_token"]
        .as_str()
        .expect("id_token")
        .to_owned();

    // Second visit: no form, straight back with a code.
    for (state, extra) in [("again", ""), ("silent", "&prompt=none")] {
        browser.goto(&authorize(state, extra)).await;
        let landed = landed_with(&browser, &callback, state).await;
        assert!(has_param(&landed, "code"), "{state}: {landed}");
    }

    // prompt=login and max_age=0 ask for the password again.
    for (state, extra) in [("relogin", "&prompt=login"), ("fresh", "&max_age=0")] {
        browser.goto(&authorize(state, extra)).await;
        assert_eq!(browser.text("#client-name").await.trim(), "SSO App");
        let url = browser.current_url().await;
        assert_eq!(url.path(), "/oauth/authorize", "{state}: {url}");
    }

    // Logout with carol's id_token as the hint returns to the registered URI with the state.
    browser
        .goto(&format!(
            "{base}/oauth/logout?id_token_hint={hint}&post_logout_redirect_uri={}&state=out",
            form_urlencoded::byte_serialize(bye.as_bytes()).collect::<String>()
        ))
        .await;
    landed_with(&browser, &bye, "out").await;

    browser.goto(&authorize("after", "&prompt=none")).await;
    let landed = landed_with(&browser, &callback, "after").await;
    let error = landed
        .query_pairs()
        .find(|(k, _)| k == "error")
        .map(|(_, v)| v.into_owned());
    assert_eq!(error.as_deref(), Some("login_required"), "{landed}");
    browser.quit().await;
}

/// Waits until the browser is at `prefix` with `state` in the query.
async fn landed_with(browser: &Browser, prefix: &str, state: &str) -> url::Url {
    let client = &browser.client;
    browser
        .wait_for(&format!("{prefix} with state={state}"), || async move {
            let url = client.current_url().await.ok()?;
            let at = url.as_str().starts_with(prefix)
                && url.query_pairs().any(|(k, v)| k == "state" && v == state);
            at.then_some(url)
        })
        .await
}

fn has_param(url: &url::Url, name: &str) -> bool {
    url.query_pairs().any(|(k, _)| k == name)
}

/// The account page in the browser: the app that holds access is listed and revoked, the
/// password change asks for the current password, and sign out ends the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_account_page_revokes_an_app_changes_the_password_and_signs_out() {
    let o = Oauthd::new();
    let Some(browser) = Browser::start("account", &[HOST]).await else {
        return;
    };
    o.add_user(EMAIL, PASSWORD);
    let server = o.serve(&[]);
    let base = format!("http://{HOST}:{}", server.addr.port());
    let callback = format!("{base}/callback");
    o.add_client(CLIENT_ID, &[&callback]);

    browser
        .goto(&format!(
            "{base}/oauth/authorize?response_type=code&client_id={CLIENT_ID}&state=s"
        ))
        .await;
    browser.type_into("input[name=email]", EMAIL).await;
    browser.type_into("input[name=password]", PASSWORD).await;
    browser.click("button#signin").await;
    landed_with(&browser, &callback, "s").await;

    browser.goto(&format!("{base}/account")).await;
    assert_eq!(browser.text("#account-email").await.trim(), EMAIL);
    assert_eq!(browser.text(".app-name").await.trim(), "Test App");
    browser.click("button.revoke").await;
    assert!(!browser.text("#no-apps").await.trim().is_empty());

    browser.type_into("#current-password", PASSWORD).await;
    browser.type_into("#new-password", "a new passphrase").await;
    browser
        .type_into("#repeat-password", "a new passphrase")
        .await;
    browser.click("button#change-password").await;
    assert!(browser.text("#notice").await.contains("changed"));

    browser.click("button#signout").await;
    assert!(browser.text("#signed-out").await.contains("signed out"));
    browser.goto(&format!("{base}/account")).await;
    assert_eq!(
        browser.prop("form", "action").await,
        format!("{base}/account")
    );
    browser.quit().await;
}
