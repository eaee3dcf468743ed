//! Helpers for the OAuth flow tests: a seeded server, and the HTTP calls a client makes.

#![allow(dead_code)]

use base64::Engine;
use serde_json::{json, Value};

use crate::support::{agent, reply, Oauthd, Reply, Server};

/// The seed's example account and client.
pub const EMAIL: &str = "bbb@grovestreams.com";
pub const PASSWORD: &str = "bbb";
pub const CLIENT_ID: &str = "123";
pub const REDIRECT: &str = "http://acme.com";

/// A database with the seed's user and confidential client, and a running server.
pub struct Seeded {
    pub o: Oauthd,
    pub server: Server,
    pub secret: String,
}

pub fn seeded(serve_flags: &[&str]) -> Seeded {
    let o = Oauthd::new();
    o.add_user(EMAIL, PASSWORD);
    let secret = o.add_client(CLIENT_ID, &[REDIRECT]);
    let server = o.serve(serve_flags);
    Seeded { o, server, secret }
}

/// The seed's `/api/oauth_login` body, with `overrides` applied (null removes a field).
pub fn login_body(overrides: Value) -> Value {
    let mut body = json!({
        "email": EMAIL, "password": PASSWORD, "scope": "xx", "response_type": "code",
        "state": "zzz", "redirect_uri": REDIRECT, "client_id": CLIENT_ID
    });
    if let (Some(map), Some(changes)) = (body.as_object_mut(), overrides.as_object()) {
        for (k, v) in changes {
            if v.is_null() {
                map.remove(k);
            } else {
                map.insert(k.clone(), v.clone());
            }
        }
    }
    body
}

pub fn login(server: &Server, body: &Value) -> Reply {
    reply(
        agent()
            .post(&server.url("/api/oauth_login"))
            .header("content-type", "application/json")
            .send(body.to_string()),
    )
}

/// Logs in headlessly and returns the code.
pub fn login_code(server: &Server, overrides: Value) -> String {
    let r = login(server, &login_body(overrides));
    assert_eq!(r.status, 200, "login failed: {}", r.body);
    r.json()["oauthCode"]
        .as_str()
        .expect("oauthCode")
        .to_owned()
}

pub fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = format!("{}:{}", enc(id), enc(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// POSTs a form to `path`, optionally with an Authorization header.
pub fn post_form(
    server: &Server,
    path: &str,
    form: &[(&str, &str)],
    authorization: Option<&str>,
) -> Reply {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut request = agent()
        .post(&server.url(path))
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    reply(request.send(body))
}

/// Exchanges a code as the seed's confidential client (HTTP Basic, form body).
pub fn exchange(s: &Seeded, code: &str) -> Reply {
    post_form(
        &s.server,
        "/api/oauth_access_token",
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
        ],
        Some(&basic(CLIENT_ID, &s.secret)),
    )
}

/// Exchanges a code at `/oauth/token` as `client` (id, secret; HTTP Basic) for the seed's
/// redirect URI.
pub fn exchange_as(server: &Server, client: (&str, &str), code: &str) -> Reply {
    post_form(
        server,
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
        ],
        Some(&basic(client.0, client.1)),
    )
}

/// Refreshes `refresh_token` at `server` as the confidential `client` (id, secret).
pub fn refresh_as(server: &Server, client: (&str, &str), refresh_token: &str) -> Reply {
    post_form(
        server,
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
        Some(&basic(client.0, client.1)),
    )
}

/// The access and refresh token of a successful token answer.
pub fn tokens(r: &Reply) -> (String, String) {
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    (
        v["access_token"].as_str().expect("at").to_owned(),
        v["refresh_token"].as_str().expect("rt").to_owned(),
    )
}

pub fn refresh(s: &Seeded, refresh_token: &str) -> Reply {
    post_form(
        &s.server,
        "/api/oauth_access_token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
        Some(&basic(CLIENT_ID, &s.secret)),
    )
}

/// The redirect URI of the public client `pub` the flow tests register.
pub const PUBLIC_REDIRECT: &str = "https://app.example/cb";

/// Exchanges a fresh code of the public client `pub`, optionally binding `secret`.
pub fn public_exchange(s: &Seeded, secret: Option<&str>) -> (String, String) {
    let code = login_code(
        &s.server,
        json!({"client_id": "pub", "redirect_uri": PUBLIC_REDIRECT}),
    );
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("client_id", "pub"),
    ];
    if let Some(secret) = secret {
        form.push(("client_secret", secret));
    }
    tokens(&post_form(&s.server, "/oauth/token", &form, None))
}

/// Refreshes as the public client `pub`, optionally presenting `secret`.
pub fn public_refresh(s: &Seeded, refresh_token: &str, secret: Option<&str>) -> Reply {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", "pub"),
    ];
    if let Some(secret) = secret {
        form.push(("client_secret", secret));
    }
    post_form(&s.server, "/oauth/token", &form, None)
}

/// Registers a confidential client that may introspect any token (`--introspect-any`);
/// returns its secret.
pub fn add_resource_server(o: &Oauthd, id: &str) -> String {
    o.json(&[
        "client",
        "add",
        "--name",
        "Resource server",
        "--id",
        id,
        "--introspect-any",
        "--redirect-uri",
        "https://api.example/cb",
    ])["client_secret"]
        .as_str()
        .expect("client_secret")
        .to_owned()
}

pub fn get_bearer(server: &Server, path: &str, token: &str) -> Reply {
    reply(
        agent()
            .get(&server.url(path))
            .header("authorization", &format!("Bearer {token}"))
            .call(),
    )
}

/// True for lower-case 8-4-4-4-12 hex UUID text, as the seed's tokens look.
pub fn is_uuid_text(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && groups.iter().all(|g| {
            g.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// Asserts an RFC 6749 §5.2 error answer.
pub fn assert_oauth_error(r: &Reply, status: u16, error: &str) {
    assert_eq!(r.status, status, "body: {}", r.body);
    assert_eq!(r.json()["error"], error, "body: {}", r.body);
    assert!(
        r.json()["error_description"].is_string(),
        "body: {}",
        r.body
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

/// A response read from a raw socket exchange.
pub struct RawReply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl RawReply {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// Sends `request` bytes as they are (any Host header, any malformation) and reads the
/// answer until the server closes the connection. Add `Connection: close` to requests.
pub fn raw_http(server: &Server, request: &[u8]) -> RawReply {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(server.addr).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    stream.write_all(request).expect("write");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    RawReply {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// GET `path_and_query` with the given Host header.
pub fn get_with_host(server: &Server, host: &str, path_and_query: &str) -> RawReply {
    raw_http(
        server,
        format!("GET {path_and_query} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
}

/// The CSRF cookie (as a `Cookie` header value) and the hidden fields of a sign-in page,
/// as a browser would submit them.
pub fn page_form(page: &Reply) -> (String, Vec<(String, String)>) {
    let cookie = page
        .header("set-cookie")
        .expect("csrf cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    let unescape = |v: &str| {
        v.replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    let fields = page
        .body
        .split("<input type=\"hidden\" name=\"")
        .skip(1)
        .filter_map(|rest| {
            let (name, rest) = rest.split_once("\" value=\"")?;
            let (value, _) = rest.split_once('"')?;
            Some((name.to_owned(), unescape(value)))
        })
        .collect();
    (cookie, fields)
}
