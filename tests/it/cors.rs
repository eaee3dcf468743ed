//! CORS over HTTP: preflights and answers of the token, revocation and `/api/me`
//! endpoints carry `Access-Control-Allow-Origin` only for registered origins (the named
//! client's, where the request names one), always `Vary: Origin`, never a wildcard or
//! credentials; the sign-in page and `/api/oauth_login` never do.

use crate::flow_support::{basic, get_bearer, post_form, seeded, Seeded, CLIENT_ID};
use crate::support::{agent, reply, Reply};

const SPA: &str = "https://spa.example";
const OTHER_SPA: &str = "https://other.example";

fn options(s: &Seeded, path: &str, origin: Option<&str>, method: &str) -> Reply {
    let mut request = agent()
        .options(&s.server.url(path))
        .header("access-control-request-method", method)
        .header("access-control-request-headers", "content-type");
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    reply(request.call())
}

fn with_spa_clients() -> Seeded {
    let s = seeded(&[]);
    s.o.json(&[
        "client",
        "add",
        "--name",
        "SPA",
        "--id",
        "spa",
        "--public",
        "--redirect-uri",
        "https://spa.example/cb",
        "--allowed-origin",
        SPA,
    ]);
    s.o.json(&[
        "client",
        "add",
        "--name",
        "Other SPA",
        "--id",
        "other",
        "--public",
        "--redirect-uri",
        "https://other.example/cb",
        "--allowed-origin",
        OTHER_SPA,
    ]);
    s
}

fn assert_no_cors(r: &Reply, what: &str) {
    assert_eq!(r.header("access-control-allow-origin"), None, "{what}");
    assert_eq!(r.header("access-control-allow-credentials"), None, "{what}");
}

#[test]
fn preflights_answer_registered_origins_only() {
    let s = with_spa_clients();
    for (path, method) in [
        ("/oauth/token", "POST"),
        ("/api/oauth_access_token", "POST"),
        ("/oauth/revoke", "POST"),
        ("/api/me", "GET"),
    ] {
        for origin in [SPA, OTHER_SPA] {
            let r = options(&s, path, Some(origin), method);
            assert_eq!(r.status, 200, "{path} {origin}: {}", r.body);
            assert_eq!(r.header("access-control-allow-origin"), Some(origin));
            assert_eq!(r.header("access-control-allow-methods"), Some(method));
            assert!(r
                .header("access-control-allow-headers")
                .is_some_and(|h| h.contains("content-type")));
            assert_eq!(r.header("vary"), Some("Origin"));
            assert_no_cors_credentials(&r);
        }
        let r = options(&s, path, Some("https://evil.example"), method);
        assert_eq!(r.status, 403, "{path}");
        assert_no_cors(&r, path);
        // Without an Origin it is no preflight: 405 as before.
        assert_eq!(options(&s, path, None, method).status, 405, "{path}");
    }
    for path in [
        "/oauth/authorize",
        "/api/oauth_login",
        "/oauth/introspect",
        "/device",
    ] {
        let r = options(&s, path, Some(SPA), "POST");
        assert_eq!(r.status, 405, "{path}");
        assert_no_cors(&r, path);
    }
}

fn assert_no_cors_credentials(r: &Reply) {
    assert_eq!(r.header("access-control-allow-credentials"), None);
    assert_ne!(r.header("access-control-allow-origin"), Some("*"));
}

fn post_with_origin(s: &Seeded, path: &str, form: &str, origin: &str, auth: Option<&str>) -> Reply {
    let mut request = agent()
        .post(&s.server.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", origin);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    reply(request.send(form.to_owned()))
}

#[test]
fn answers_carry_cors_headers_only_for_the_named_clients_origins() {
    let s = with_spa_clients();
    // An error answer for the named client, from its origin: readable by the page.
    let r = post_with_origin(
        &s,
        "/oauth/token",
        "grant_type=authorization_code&code=x&client_id=spa",
        SPA,
        None,
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.header("access-control-allow-origin"), Some(SPA));
    assert_eq!(r.header("vary"), Some("Origin"));
    assert_no_cors_credentials(&r);
    // The same request from another client's registered origin: no CORS headers.
    let r = post_with_origin(
        &s,
        "/oauth/token",
        "grant_type=authorization_code&code=x&client_id=spa",
        OTHER_SPA,
        None,
    );
    assert_no_cors(&r, "other client's origin");
    assert_eq!(r.header("vary"), Some("Origin"));
    // The seed's client registered no origin at all.
    let r = post_with_origin(
        &s,
        "/oauth/revoke",
        "token=x",
        SPA,
        Some(&basic(CLIENT_ID, &s.secret)),
    );
    assert_eq!(r.status, 200);
    assert_no_cors(&r, "client without origins");
    let r = post_with_origin(&s, "/oauth/revoke", "token=x&client_id=spa", SPA, None);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some(SPA));

    // /api/me names no client: any registered origin.
    let code = crate::flow_support::login_code(&s.server, serde_json::json!({}));
    let tokens = post_form(
        &s.server,
        "/oauth/token",
        &[("grant_type", "authorization_code"), ("code", &code)],
        Some(&basic(CLIENT_ID, &s.secret)),
    );
    let token = tokens.json()["access_token"]
        .as_str()
        .expect("at")
        .to_owned();
    for origin in [SPA, OTHER_SPA] {
        let r = reply(
            agent()
                .get(&s.server.url("/api/me"))
                .header("authorization", &format!("Bearer {token}"))
                .header("origin", origin)
                .call(),
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.header("access-control-allow-origin"), Some(origin));
    }
    let r = reply(
        agent()
            .get(&s.server.url("/api/me"))
            .header("authorization", &format!("Bearer {token}"))
            .header("origin", "https://evil.example")
            .call(),
    );
    assert_no_cors(&r, "unregistered origin");
    assert_eq!(
        get_bearer(&s.server, "/api/me", &token).header("vary"),
        Some("Origin")
    );
}

#[test]
fn the_sign_in_page_and_headless_login_never_answer_cors() {
    let s = with_spa_clients();
    let r = reply(
        agent()
            .get(&s.server.url("/oauth/authorize?response_type=code&client_id=spa&redirect_uri=https://spa.example/cb"))
            .header("origin", SPA)
            .call(),
    );
    assert_eq!(r.status, 200);
    assert_no_cors(&r, "sign-in page");
    let r = reply(
        agent()
            .post(&s.server.url("/api/oauth_login"))
            .header("content-type", "application/json")
            .header("origin", SPA)
            .send("{}"),
    );
    assert_no_cors(&r, "oauth_login");
}

/// The single-page app's two pages, served from another origin: the first starts a PKCE
/// authorization, the second exchanges the code with `fetch` and calls `/api/me`, then
/// tries the token endpoint as a client that did not register this origin.
const SPA_INDEX: &str = r#"<!doctype html><title>SPA</title><p id="status">starting</p><script>
(async () => {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const b64url = (b) => btoa(String.fromCharCode(...b)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const verifier = b64url(bytes);
  const challenge = b64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))));
  sessionStorage.setItem('verifier', verifier);
  const q = new URLSearchParams({response_type: 'code', client_id: 'spa', redirect_uri: location.origin + '/cb.html',
    state: 's1', scope: 'profile', code_challenge: challenge, code_challenge_method: 'S256'});
  location.href = 'OAUTHD/oauth/authorize?' + q;
})();
</script>"#;

const SPA_CALLBACK: &str = r#"<!doctype html><title>SPA callback</title><pre id="result"></pre><script>
(async () => {
  const out = {};
  try {
    const p = new URLSearchParams(location.search);
    const body = new URLSearchParams({grant_type: 'authorization_code', code: p.get('code'), client_id: 'spa',
      redirect_uri: location.origin + '/cb.html', code_verifier: sessionStorage.getItem('verifier')});
    const r = await fetch('OAUTHD/oauth/token', {method: 'POST', body});
    out.token_status = r.status;
    const tokens = await r.json();
    out.scope = tokens.scope;
    out.has_refresh = !!tokens.refresh_token;
    const me = await fetch('OAUTHD/api/me', {headers: {authorization: 'Bearer ' + tokens.access_token}});
    out.me = await me.json();
    try {
      await fetch('OAUTHD/oauth/token', {method: 'POST', body: new URLSearchParams({grant_type: 'refresh_token', refresh_token: 'x', client_id: 'nocors'})});
      out.other_client = 'readable';
    } catch (e) { out.other_client = 'blocked'; }
  } catch (e) { out.error = String(e); }
  document.getElementById('result').textContent = JSON.stringify(out);
})();
</script>"#;

/// A tiny static server for the SPA on another port (another origin), stopped with the
/// test process; `base` is substituted for `OAUTHD` in the pages.
fn spa_server(base: &str) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the SPA server");
    let port = listener.local_addr().expect("addr").port();
    let (index, callback) = (
        SPA_INDEX.replace("OAUTHD", base),
        SPA_CALLBACK.replace("OAUTHD", base),
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request_line = String::new();
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            // Skip the headers.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let page = if request_line.starts_with("GET /cb.html") {
                &callback
            } else {
                &index
            };
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    port
}

/// A real browser runs an SPA-style PKCE flow from a second origin: the sign-in page in
/// the browser, then `fetch` to the token endpoint and `/api/me` (with a preflight, for
/// its `Authorization` header), which CORS lets the page read; a client that did not
/// register the origin stays unreadable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_page_app_on_another_origin_exchanges_its_code_with_fetch() {
    use crate::webdriver::Browser;

    let s = seeded(&[]);
    let Some(browser) = Browser::start("spa", &[]).await else {
        return;
    };
    let base = s.server.url("");
    let base = base.trim_end_matches('/');
    let spa_port = spa_server(base);
    let spa_origin = format!("http://127.0.0.1:{spa_port}");
    s.o.json(&[
        "client",
        "add",
        "--name",
        "Browser app",
        "--id",
        "spa",
        "--public",
        "--require-pkce",
        "--redirect-uri",
        &format!("{spa_origin}/cb.html"),
        "--allowed-origin",
        &spa_origin,
    ]);
    s.o.json(&[
        "client",
        "add",
        "--name",
        "No CORS",
        "--id",
        "nocors",
        "--public",
        "--redirect-uri",
        "https://nocors.example/cb",
    ]);

    browser.goto(&format!("{spa_origin}/index.html")).await;
    assert_eq!(browser.text("#client-name").await, "Browser app");
    browser
        .type_into("input[name=email]", crate::flow_support::EMAIL)
        .await;
    browser
        .type_into("input[name=password]", crate::flow_support::PASSWORD)
        .await;
    browser.click("button#signin").await;
    browser
        .url_starting_with(&format!("{spa_origin}/cb.html"))
        .await;
    let result = browser.text("#result").await;
    browser.quit().await;

    let result: serde_json::Value = serde_json::from_str(&result).expect("the page's JSON");
    assert_eq!(result["token_status"], 200, "{result}");
    assert_eq!(result["scope"], "profile", "{result}");
    assert_eq!(result["has_refresh"], true, "{result}");
    assert_eq!(
        result["me"]["email"],
        crate::flow_support::EMAIL,
        "{result}"
    );
    assert_eq!(result["other_client"], "blocked", "{result}");
    assert!(
        s.server.logs().contains("OPTIONS"),
        "the browser sent a preflight"
    );
}
