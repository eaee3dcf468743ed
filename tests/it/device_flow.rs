//! The Device Authorization Grant (RFC 8628) over HTTP: the device's requests, the
//! `/device` page's approve and deny, `authorization_pending`, `slow_down`,
//! `access_denied`, `expired_token`, single use, the per-address throttle on user codes,
//! and polling that never writes to the database.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::flow_support::{assert_oauth_error, get_bearer, page_form, post_form};
use crate::support::{agent, reply, Oauthd, Reply, Server};

pub const EMAIL: &str = "tv-owner@example.com";
const PASSWORD: &str = "correct horse";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A server with a user and the public device client `tv`.
pub fn device_server(serve_flags: &[&str]) -> (Oauthd, Server) {
    let o = Oauthd::new();
    o.add_user(EMAIL, PASSWORD);
    add_tv(&o);
    let server = o.serve(serve_flags);
    (o, server)
}

/// Registers the public device client `tv` ("Living-room TV"), with refresh tokens.
pub fn add_tv(o: &Oauthd) {
    o.json(&[
        "client",
        "add",
        "--name",
        "Living-room TV",
        "--id",
        "tv",
        "--public",
        "--grant",
        "device_code",
        "--grant",
        "refresh_token",
    ]);
}

/// Starts a device authorization for `tv`; returns the answer.
pub fn start(server: &Server, scope: &str) -> Value {
    let r = post_form(
        server,
        "/oauth/device_authorization",
        &[("client_id", "tv"), ("scope", scope)],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    r.json()
}

fn poll(server: &Server, device_code: &str) -> Reply {
    post_form(
        server,
        "/oauth/token",
        &[
            ("grant_type", DEVICE_GRANT),
            ("device_code", device_code),
            ("client_id", "tv"),
        ],
        None,
    )
}

fn get(server: &Server, path: &str) -> Reply {
    reply(agent().get(&server.url(path)).call())
}

/// Opens `/device?user_code=…`, then submits it with the user's credentials and `action`.
pub fn answer(server: &Server, typed_code: &str, action: &str) -> Reply {
    answer_as(server, typed_code, action, (EMAIL, PASSWORD))
}

/// As [`answer`], signing in as another user: `(email, password)`.
pub fn answer_as(server: &Server, typed_code: &str, action: &str, user: (&str, &str)) -> Reply {
    submit(server, open_page(server, typed_code), action, user)
}

/// The device page for `typed_code`, as the form it shows: (cookie, hidden fields).
fn open_page(server: &Server, typed_code: &str) -> (String, Vec<(String, String)>) {
    let page = get(server, &format!("/device?user_code={typed_code}"));
    assert_eq!(page.status, 200, "{}", page.body);
    page_form(&page)
}

/// Posts a form [`open_page`] showed, signed in as `user`, with `action`.
fn submit(
    server: &Server,
    (cookie, fields): (String, Vec<(String, String)>),
    action: &str,
    user: (&str, &str),
) -> Reply {
    let mut form: Vec<(String, String)> = fields;
    form.push(("email".into(), user.0.into()));
    form.push(("password".into(), user.1.into()));
    form.push(("action".into(), action.into()));
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    reply(
        agent()
            .post(&server.url("/device"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", &cookie)
            .send(body),
    )
}

#[test]
fn a_device_is_approved_on_the_page_and_redeems_its_code_once() {
    let (_o, server) = device_server(&["--device-interval", "2"]);
    let started = start(&server, "read write");
    let user_code = started["user_code"].as_str().expect("user_code").to_owned();
    let device_code = started["device_code"]
        .as_str()
        .expect("device_code")
        .to_owned();
    assert_eq!(user_code.len(), 9, "{user_code}");
    assert_eq!(&user_code[4..5], "-");
    assert!(user_code
        .replace('-', "")
        .bytes()
        .all(|b| b"BCDFGHJKLMNPQRSTVWXZ".contains(&b)));
    assert_eq!(started["verification_uri"], server.url("/device"));
    assert_eq!(
        started["verification_uri_complete"],
        server.url(&format!("/device?user_code={user_code}"))
    );
    assert_eq!(started["expires_in"], 600);
    assert_eq!(started["interval"], 2);

    assert_oauth_error(&poll(&server, &device_code), 400, "authorization_pending");
    // Polling again at once is too early: slow_down, and the interval grows.
    assert_oauth_error(&poll(&server, &device_code), 400, "slow_down");
    assert_oauth_error(&poll(&server, &device_code), 400, "slow_down");

    // The page shows client and scopes; the code is typed lower-case without its hyphen.
    let typed = user_code.replace('-', "").to_lowercase();
    let page = get(&server, &format!("/device?user_code={typed}"));
    assert!(page.body.contains("Living-room TV"), "{}", page.body);
    assert!(
        page.body.contains("<li>read</li><li>write</li>"),
        "{}",
        page.body
    );
    let done = answer(&server, &typed, "approve");
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("connected"), "{}", done.body);

    let tokens = poll(&server, &device_code);
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let v = tokens.json();
    assert_eq!(v["scope"], "read write");
    assert!(v["refresh_token"].is_string(), "{v}");
    assert!(v["id_token"].is_null(), "no id_token without openid: {v}");
    let me = get_bearer(&server, "/api/me", v["access_token"].as_str().expect("at"));
    assert_eq!(me.json()["email"], EMAIL);
    // Single use.
    assert_oauth_error(&poll(&server, &device_code), 400, "invalid_grant");
    // The page no longer knows the code either.
    assert_eq!(
        get(&server, &format!("/device?user_code={user_code}")).status,
        400
    );
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// With `openid`, the device's token answer carries an id_token for the user who
/// approved, whose `auth_time` is the approval (not the later redemption).
#[test]
fn a_device_with_openid_gets_an_id_token_whose_auth_time_is_the_approval() {
    use base64::Engine;
    let (o, server) = device_server(&["--device-interval", "1"]);
    let started = start(&server, "openid email");
    let user_code = started["user_code"].as_str().expect("user_code");
    let device_code = started["device_code"].as_str().expect("device_code");
    let before = unix_now();
    let done = answer(&server, user_code, "approve");
    assert_eq!(done.status, 200, "{}", done.body);
    let after = unix_now();
    // Redeemed well after the approval, so the two times differ.
    std::thread::sleep(Duration::from_millis(2100));
    let tokens = poll(&server, device_code);
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let v = tokens.json();
    let id_token = v["id_token"].as_str().unwrap_or_else(|| panic!("{v}"));
    let payload = id_token.split('.').nth(1).expect("payload");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("b64"),
    )
    .expect("json");
    let user = o.json(&["user", "show", EMAIL]);
    assert_eq!(claims["sub"], user["id"], "{claims}");
    assert_eq!(claims["aud"], "tv", "{claims}");
    assert_eq!(claims["email"], EMAIL, "{claims}");
    assert_eq!(
        claims["iss"],
        server.url("").trim_end_matches('/'),
        "{claims}"
    );
    let auth_time = claims["auth_time"].as_i64().expect("auth_time");
    assert!(
        (before..=after).contains(&auth_time),
        "auth_time {auth_time} not in the approval window {before}..={after}"
    );
    let iat = claims["iat"].as_i64().expect("iat");
    assert!(
        iat >= after + 2,
        "iat {iat} is the redemption, after {after}"
    );
}

#[test]
fn a_denied_device_is_told_once_and_an_expired_one_gets_expired_token() {
    let (_o, server) = device_server(&["--device-code-ttl", "3"]);
    let started = start(&server, "read");
    let device_code = started["device_code"].as_str().expect("device_code");
    let done = answer(&server, started["user_code"].as_str().expect("uc"), "deny");
    assert!(done.body.contains("Denied"), "{}", done.body);
    assert_oauth_error(&poll(&server, device_code), 400, "access_denied");
    assert_oauth_error(&poll(&server, device_code), 400, "invalid_grant");

    let started = start(&server, "read");
    let device_code = started["device_code"].as_str().expect("device_code");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = poll(&server, device_code);
        if r.json()["error"] == "expired_token" {
            assert_oauth_error(&r, 400, "expired_token");
            break;
        }
        assert!(Instant::now() < deadline, "never expired: {}", r.body);
        std::thread::sleep(Duration::from_millis(500));
    }
    // Too late to approve, too.
    let page = get(
        &server,
        &format!(
            "/device?user_code={}",
            started["user_code"].as_str().expect("uc")
        ),
    );
    assert_eq!(page.status, 400);
}

#[test]
fn another_client_cannot_redeem_a_device_code() {
    let (o, server) = device_server(&[]);
    o.json(&[
        "client",
        "add",
        "--name",
        "Other",
        "--id",
        "other",
        "--public",
        "--grant",
        "device_code",
    ]);
    let started = start(&server, "read");
    answer(
        &server,
        started["user_code"].as_str().expect("uc"),
        "approve",
    );
    let r = post_form(
        &server,
        "/oauth/token",
        &[
            ("grant_type", DEVICE_GRANT),
            ("device_code", started["device_code"].as_str().expect("dc")),
            ("client_id", "other"),
        ],
        None,
    );
    assert_oauth_error(&r, 400, "invalid_grant");
    // The rightful device still gets its tokens.
    assert_eq!(
        poll(&server, started["device_code"].as_str().expect("dc")).status,
        200
    );
}

#[test]
fn guessing_user_codes_is_throttled_per_address_and_the_form_needs_its_csrf_token() {
    let (_o, server) = device_server(&[]);
    let started = start(&server, "read");
    let user_code = started["user_code"].as_str().expect("uc").to_owned();
    // A post without the page's cookie and token changes nothing.
    let body = format!("user_code={user_code}&email={EMAIL}&password=x&action=approve");
    let r = reply(
        agent()
            .post(&server.url("/device"))
            .header("content-type", "application/x-www-form-urlencoded")
            .send(body),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    for n in 0..10 {
        let r = get(
            &server,
            &format!(
                "/device?user_code=BBBB-BB{}",
                ["BB", "BC", "BD", "BF", "BG", "BH", "BJ", "BK", "BL", "BM"][n]
            ),
        );
        assert_eq!(r.status, 400, "guess {n}: {}", r.body);
    }
    let r = get(&server, &format!("/device?user_code={user_code}"));
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    assert_oauth_error(
        &poll(&server, started["device_code"].as_str().expect("dc")),
        400,
        "authorization_pending",
    );
}

/// Size and modification time of a file (`None`: absent).
fn stamp(path: &Path) -> Option<(u64, SystemTime)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()?))
}

#[test]
fn polling_a_pending_device_writes_nothing_to_the_database() {
    crate::support::sqlite_only!();
    let (o, server) = device_server(&["--device-interval", "1"]);
    let started = start(&server, "read");
    let device_code = started["device_code"].as_str().expect("dc").to_owned();
    let db = o.dir.path().join("oauthd.db");
    let wal = o.dir.path().join("oauthd.db-wal");
    // Once idle, the writer truncates the WAL to zero: wait for that quiet state.
    let deadline = Instant::now() + Duration::from_secs(60);
    while stamp(&wal).is_some_and(|(len, _)| len > 0) {
        assert!(Instant::now() < deadline, "the WAL never emptied");
        std::thread::sleep(Duration::from_millis(200));
    }
    // A write would leave the WAL non-empty or, once the idle writer checkpointed it,
    // change the database file. (The WAL's own mtime is no evidence: the idle writer may
    // truncate an already empty WAL again.)
    let wal_len = |wal: &Path| stamp(wal).map(|(len, _)| len);
    let before = (stamp(&db), wal_len(&wal));
    for _ in 0..20 {
        let r = poll(&server, &device_code);
        let error = r.json()["error"].as_str().unwrap_or_default().to_owned();
        assert!(
            error == "authorization_pending" || error == "slow_down",
            "{}",
            r.body
        );
    }
    std::thread::sleep(Duration::from_millis(1_500));
    assert_eq!(
        (stamp(&db), wal_len(&wal)),
        before,
        "polling wrote to the database"
    );
}

/// A real device client (Python's Authlib) polls while a real browser (headless Chromium)
/// opens `verification_uri_complete`, signs in and approves; the client then holds a
/// working token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_polls_while_chromium_approves_on_the_device_page() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    use crate::webdriver::Browser;

    let (_o, server) = device_server(&["--device-interval", "1"]);
    let Some(browser) = Browser::start("device", &[]).await else {
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/device_client.py");
    let python = "/usr/bin/python3";
    let probe = Command::new(python)
        .args(["-c", "import authlib, requests"])
        .status();
    assert!(
        probe.is_ok_and(|s| s.success()),
        "{python} with Authlib is required (apt-get install python3-authlib python3-requests)"
    );
    let mut client = KillOnDrop(
        Command::new(python)
            .arg(&script)
            .args([&server.url(""), "tv", "read"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the Authlib device client"),
    );
    let mut lines = BufReader::new(client.0.stdout.take().expect("stdout")).lines();
    let started: Value =
        serde_json::from_str(&lines.next().expect("a first line").expect("read")).expect("JSON");

    browser
        .goto(started["verification_uri_complete"].as_str().expect("uri"))
        .await;
    assert_eq!(browser.text("#client-name").await, "Living-room TV");
    assert_eq!(
        browser.text("#user-code").await,
        started["user_code"].as_str().expect("user_code")
    );
    browser.type_into("#email", EMAIL).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("#approve").await;
    assert!(browser.text("#done").await.contains("connected"));
    browser.quit().await;

    let outcome = tokio::task::spawn_blocking(move || lines.next())
        .await
        .expect("join")
        .expect("an outcome line")
        .expect("read");
    let outcome: Value = serde_json::from_str(&outcome).expect("JSON");
    let token = outcome["token"]["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("the device client got no token: {outcome}"));
    let me = get_bearer(&server, "/api/me", token);
    assert_eq!(me.json()["email"], EMAIL);
}

/// A child process killed when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A device client registered without the `refresh_token` grant gets only an access token.
#[test]
fn a_device_client_without_the_refresh_grant_gets_no_refresh_token() {
    let (o, server) = device_server(&[]);
    o.json(&[
        "client",
        "add",
        "--name",
        "Kitchen radio",
        "--id",
        "radio",
        "--public",
        "--grant",
        "device_code",
    ]);
    let r = post_form(
        &server,
        "/oauth/device_authorization",
        &[("client_id", "radio"), ("scope", "read")],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let started = r.json();
    let typed = started["user_code"]
        .as_str()
        .expect("user_code")
        .replace('-', "");
    let done = answer(&server, &typed, "approve");
    assert_eq!(done.status, 200, "{}", done.body);
    let r = post_form(
        &server,
        "/oauth/token",
        &[
            ("grant_type", DEVICE_GRANT),
            ("device_code", started["device_code"].as_str().expect("dc")),
            ("client_id", "radio"),
        ],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert!(v["access_token"].is_string(), "{v}");
    assert!(v.get("refresh_token").is_none(), "{v}");
}

/// Racing polls of one approved device code: exactly one gets tokens, every other is
/// refused (the redemption is a single-use compare-and-set in the store, whatever the
/// in-memory poll record says).
#[test]
fn racing_polls_of_an_approved_code_redeem_it_once() {
    let (_o, server) = device_server(&["--device-interval", "1"]);
    let started = start(&server, "read");
    let device_code = started["device_code"].as_str().expect("dc").to_owned();
    let typed = started["user_code"].as_str().expect("uc").to_owned();
    assert_eq!(answer(&server, &typed, "approve").status, 200);
    let replies: Vec<Reply> = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| poll(&server, &device_code)))
            .collect();
        racers
            .into_iter()
            .map(|r| r.join().expect("poller"))
            .collect()
    });
    let won = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(
        won,
        1,
        "{:?}",
        replies.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    for r in replies.iter().filter(|r| r.status != 200) {
        assert_eq!(r.status, 400, "{}", r.body);
        let error = r.json()["error"].as_str().unwrap_or_default().to_owned();
        assert!(
            ["invalid_grant", "slow_down"].contains(&error.as_str()),
            "{}",
            r.body
        );
    }
}

/// An approval and a denial racing for one user code: exactly one is recorded, and the
/// device's next poll reflects that one.
#[test]
fn racing_answers_to_one_user_code_record_exactly_one() {
    let (_o, server) = device_server(&["--device-interval", "1"]);
    let started = start(&server, "read");
    let device_code = started["device_code"].as_str().expect("dc").to_owned();
    let typed = started["user_code"].as_str().expect("uc").to_owned();
    let (server, typed) = (&server, typed.as_str());
    // Every tab shows the page first (a code once answered is no longer shown); then
    // the four answers race.
    let pages: Vec<_> = (0..4).map(|_| open_page(server, typed)).collect();
    let answers: Vec<(&str, Reply)> = std::thread::scope(|scope| {
        let racers: Vec<_> = ["approve", "deny", "approve", "deny"]
            .into_iter()
            .zip(pages)
            .map(|(action, page)| {
                scope.spawn(move || (action, submit(server, page, action, (EMAIL, PASSWORD))))
            })
            .collect();
        racers
            .into_iter()
            .map(|r| r.join().expect("answerer"))
            .collect()
    });
    let recorded: Vec<&str> = answers
        .iter()
        .filter(|(_, r)| r.status == 200)
        .map(|(action, _)| *action)
        .collect();
    assert_eq!(
        recorded.len(),
        1,
        "{:?}",
        answers
            .iter()
            .map(|(a, r)| (a, r.status))
            .collect::<Vec<_>>()
    );
    let outcome = poll(server, &device_code);
    if recorded[0] == "approve" {
        assert_eq!(outcome.status, 200, "{}", outcome.body);
    } else {
        assert_oauth_error(&outcome, 400, "access_denied");
    }
}
