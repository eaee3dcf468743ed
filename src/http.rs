//! HTTP plumbing without policy: bounded body reading, strict parameter parsing (form,
//! JSON, query), the Basic / Bearer / Cookie headers, and response builders with the
//! headers every answer of a kind must carry.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};

/// Request bodies larger than this are refused with 413: no request of this API needs more.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// A single parameter value longer than this is refused: no OAuth parameter needs more.
pub const MAX_PARAM_BYTES: usize = 4096;
/// More parameters than this in one request are refused. The largest request oauthd reads
/// (the sign-in form) has about a dozen; the cap keeps a body of thousands of tiny names
/// from costing more than a few microseconds to parse.
pub const MAX_PARAMS: usize = 64;
/// A client gets this long to send a request body, so a slow sender cannot hold a
/// connection (and its task) forever. Headers have their own timeout in `server.rs`.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

mod json;
#[cfg(test)]
mod props;

pub use json::{parse_json, parse_json_strings};

pub type Body = Full<Bytes>;

/// Why a request's parameters could not be read. Messages are constant strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("request body too large")]
    TooLarge,
    #[error("a parameter was sent more than once")]
    Duplicate,
    #[error("parameters must be valid UTF-8 without NUL bytes")]
    BadEncoding,
    #[error("a parameter value is too long")]
    ValueTooLong,
    #[error("malformed JSON body: expected one object of string values")]
    BadJson,
    #[error("a JSON field that must be a string is not")]
    NotAString,
    #[error("too many parameters")]
    TooManyParams,
    #[error("unsupported content type")]
    UnsupportedContentType,
    #[error("the request body could not be read")]
    Unreadable,
    #[error("the request body was not sent in time")]
    TimedOut,
}

impl ParamError {
    /// A constant, client-facing description (the `Display` text, as a `&'static str`).
    pub fn description(self) -> &'static str {
        match self {
            ParamError::TooLarge => "request body too large",
            ParamError::Duplicate => "a parameter was sent more than once",
            ParamError::BadEncoding => "parameters must be valid UTF-8 without NUL bytes",
            ParamError::ValueTooLong => "a parameter value is too long",
            ParamError::BadJson => "malformed JSON body: expected one object of string values",
            ParamError::NotAString => "every field must be a string (or null)",
            ParamError::TooManyParams => "too many parameters",
            ParamError::UnsupportedContentType => {
                "unsupported content type: send a form, JSON, or a query string"
            }
            ParamError::Unreadable => "the request body could not be read",
            ParamError::TimedOut => "the request body was not sent in time",
        }
    }
}

/// Request parameters, each name at most once.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The value, or `None` when absent or empty (RFC 6749 §3.1: empty means omitted).
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    fn insert(&mut self, name: String, value: String) -> Result<(), ParamError> {
        check_text(&name)?;
        check_text(&value)?;
        if self.0.len() >= MAX_PARAMS && !self.0.contains_key(&name) {
            return Err(ParamError::TooManyParams);
        }
        if self.0.insert(name, value).is_some() {
            return Err(ParamError::Duplicate);
        }
        Ok(())
    }

    /// Adds every parameter of `other`; a name present in both is a duplicate.
    pub fn merge(&mut self, other: Params) -> Result<(), ParamError> {
        for (name, value) in other.0 {
            self.insert(name, value)?;
        }
        Ok(())
    }
}

fn check_text(text: &str) -> Result<(), ParamError> {
    if text.len() > MAX_PARAM_BYTES {
        return Err(ParamError::ValueTooLong);
    }
    if text.contains('\0') {
        return Err(ParamError::BadEncoding);
    }
    Ok(())
}

/// Parses `application/x-www-form-urlencoded` text strictly: percent-decoded bytes must be
/// UTF-8 and every name must appear once.
pub fn parse_form(bytes: &[u8]) -> Result<Params, ParamError> {
    let mut params = Params::default();
    for pair in bytes.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        // A pair without `=` is a name with an empty value, as browsers read it.
        let (name, value) = match pair.iter().position(|b| *b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &[][..]),
        };
        params.insert(decode_component(name)?, decode_component(value)?)?;
    }
    Ok(params)
}

fn decode_component(raw: &[u8]) -> Result<String, ParamError> {
    let plus_as_space: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    let decoded: Vec<u8> = percent_decode(&plus_as_space);
    String::from_utf8(decoded).map_err(|_| ParamError::BadEncoding)
}

fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if input[i] == b'%' && i + 2 < input.len() {
            if let (Some(h), Some(l)) = (hex(input[i + 1]), hex(input[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

/// The query string's parameters (strictly, as a form).
pub fn query_params<B>(req: &Request<B>) -> Result<Params, ParamError> {
    match req.uri().query() {
        Some(query) => parse_form(query.as_bytes()),
        None => Ok(Params::default()),
    }
}

/// Reads the whole body, refusing more than [`MAX_BODY_BYTES`] (by Content-Length up
/// front, and by counting for chunked bodies).
pub async fn read_body(
    req: Request<Incoming>,
) -> Result<(hyper::http::request::Parts, Bytes), ParamError> {
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(ParamError::TooLarge);
    }
    let collected = tokio::time::timeout(
        BODY_READ_TIMEOUT,
        Limited::new(body, MAX_BODY_BYTES).collect(),
    )
    .await
    .map_err(|_| ParamError::TimedOut)?;
    match collected {
        Ok(collected) => Ok((parts, collected.to_bytes())),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ParamError::TooLarge),
        Err(_) => Err(ParamError::Unreadable),
    }
}

/// Body parameters by content type: form, JSON, or none (an empty body).
pub fn body_params(headers: &HeaderMap, body: &[u8]) -> Result<Params, ParamError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Params::default());
    }
    // A content type that is not visible ASCII is refused, not taken as absent.
    let content_type = match headers.get(CONTENT_TYPE).map(HeaderValue::to_str) {
        None => None,
        Some(Ok(value)) => value
            .split(';')
            .next()
            .map(|v| v.trim().to_ascii_lowercase()),
        Some(Err(_)) => return Err(ParamError::UnsupportedContentType),
    };
    match content_type.as_deref() {
        Some("application/x-www-form-urlencoded") => parse_form(body),
        Some("application/json") => parse_json(body),
        // Some clients omit the content type; guess by the first byte.
        None | Some("text/plain") => {
            if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
                parse_json(body)
            } else {
                parse_form(body)
            }
        }
        Some(_) => Err(ParamError::UnsupportedContentType),
    }
}

/// HTTP Basic credentials, each half form-url-decoded (RFC 6749 §2.3.1). Its `Debug`
/// never prints the password.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// `Ok(None)` when there is no Basic header; `Err` when there is one that is malformed.
pub fn basic_auth(headers: &HeaderMap) -> Result<Option<BasicCredentials>, ParamError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ParamError::BadEncoding)?;
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .map_err(|_| ParamError::BadEncoding)?;
    let Some(colon) = decoded.iter().position(|b| *b == b':') else {
        return Err(ParamError::BadEncoding);
    };
    let username = decode_component(&decoded[..colon])?;
    let password = decode_component(&decoded[colon + 1..])?;
    check_text(&username)?;
    check_text(&password)?;
    Ok(Some(BasicCredentials { username, password }))
}

/// The bearer token of `Authorization: Bearer …`, if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The value of cookie `name`, if sent (the first, if sent more than once).
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    cookie_values(headers, name)
        .next()
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// The value of cookie `name` for a cookie that selects what a call acts on: a value that
/// is not UTF-8, or the name sent twice, is an error rather than "no cookie", so the call
/// fails instead of silently acting without the selection. Other cookies are not read.
pub fn cookie_strict<'a>(
    headers: &'a HeaderMap,
    name: &str,
) -> Result<Option<&'a str>, ParamError> {
    let mut values = cookie_values(headers, name);
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ParamError::Duplicate);
    }
    let value = std::str::from_utf8(first).map_err(|_| ParamError::BadEncoding)?;
    check_text(value)?;
    Ok(Some(value))
}

/// The raw values of every cookie called `name`, over all `Cookie` headers, without
/// surrounding quotes.
fn cookie_values<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a [u8]> {
    let name = name.as_bytes().to_vec();
    headers
        .get_all(hyper::header::COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
        .filter_map(|pair| {
            let at = pair.iter().position(|b| *b == b'=')?;
            Some((pair[..at].trim_ascii(), pair[at + 1..].trim_ascii()))
        })
        .filter(move |(k, _)| *k == name.as_slice())
        .map(|(_, v)| trim_quotes(v))
}

fn trim_quotes(value: &[u8]) -> &[u8] {
    let start = value.iter().position(|b| *b != b'"').unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| *b != b'"')
        .map_or(start, |at| at + 1);
    &value[start..end]
}

/// The client's address as a reverse proxy on this host reports it: for a connection from
/// a loopback address, the last (proxy-appended) X-Forwarded-For entry; otherwise, or
/// when that entry is not an IP address, the connection's own address. Only the last
/// entry counts, because a client can put anything in the ones before it.
pub fn forwarded_client(headers: &HeaderMap, peer: std::net::SocketAddr) -> std::net::SocketAddr {
    if !peer.ip().is_loopback() {
        return peer;
    }
    let last = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .last()
        .and_then(|entry| entry.trim().parse::<std::net::IpAddr>().ok());
    match last {
        Some(ip) => std::net::SocketAddr::new(ip, peer.port()),
        None => peer,
    }
}

/// The request's host name from the Host header, without port, lower-cased.
pub fn host_name(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(hyper::header::HOST)?.to_str().ok()?;
    let name = if host.starts_with('[') {
        host.split(']').next().map(|h| format!("{h}]"))?
    } else {
        host.split(':').next()?.to_owned()
    };
    Some(name.to_ascii_lowercase())
}

pub fn set_header(response: &mut Response<Body>, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

/// Adds a header without replacing one of the same name (a second `Set-Cookie`).
pub fn append_header(response: &mut Response<Body>, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().append(name, value);
    }
}

/// `Cache-Control: no-store` and `Pragma: no-cache`: for anything carrying a credential.
pub fn no_store(response: &mut Response<Body>) {
    set_header(response, "cache-control", "no-store");
    set_header(response, "pragma", "no-cache");
}

fn with_body(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    json_bytes(status, serde_json::to_vec(value).unwrap_or_default())
}

pub fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    with_body(status, "application/json;charset=UTF-8", Bytes::from(body))
}

pub fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    with_body(
        status,
        "text/plain; charset=utf-8",
        Bytes::from_static(body.as_bytes()),
    )
}

pub fn bytes(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    with_body(status, content_type, body)
}

/// An HTML page with the headers every page carries: no caching, no framing, no referrer
/// to other sites, and a CSP that allows only this origin's own assets, plus the one
/// inline `<style nonce=…>` block that carries the brand colour.
pub fn html_with_style_nonce(
    status: StatusCode,
    body: String,
    style_nonce: Option<&str>,
) -> Response<Body> {
    let mut response = with_body(status, "text/html; charset=utf-8", Bytes::from(body));
    set_header(&mut response, "cache-control", "no-store");
    set_header(&mut response, "pragma", "no-cache");
    set_header(&mut response, "x-frame-options", "DENY");
    // `same-origin`, not `no-referrer`: other sites still get no referrer, and our own
    // form posts carry a real `Origin` (under `no-referrer` browsers send `Origin: null`).
    set_header(&mut response, "referrer-policy", "same-origin");
    set_header(&mut response, "x-content-type-options", "nosniff");
    let style_src = match style_nonce {
        Some(nonce) => format!("'self' 'nonce-{nonce}'"),
        None => "'self'".to_owned(),
    };
    set_header(
        &mut response,
        "content-security-policy",
        &format!(
            "default-src 'none'; img-src 'self' data:; style-src {style_src}; script-src 'self'; \
             frame-ancestors 'none'; base-uri 'none'"
        ),
    );
    response
}

/// A 302 to `location`, uncached.
pub fn redirect(location: &str) -> Response<Body> {
    let mut response = with_body(StatusCode::FOUND, "text/plain; charset=utf-8", Bytes::new());
    set_header(&mut response, "location", location);
    set_header(&mut response, "cache-control", "no-store");
    set_header(&mut response, "referrer-policy", "no-referrer");
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decodes_and_rejects_duplicates() {
        let p = parse_form(b"a=1&b=x+y%21&c=").expect("parse");
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), Some("x y!"));
        assert_eq!(p.get("c"), Some(""));
        assert_eq!(p.non_empty("c"), None);
        assert_eq!(parse_form(b"a=1&a=2"), Err(ParamError::Duplicate));
        assert_eq!(parse_form(b"a=1&a=1"), Err(ParamError::Duplicate));
    }

    #[test]
    fn form_rejects_bad_utf8_nul_and_long_values() {
        assert_eq!(parse_form(b"a=%ff"), Err(ParamError::BadEncoding));
        assert_eq!(parse_form(b"a=%00"), Err(ParamError::BadEncoding));
        let long = format!("a={}", "x".repeat(MAX_PARAM_BYTES + 1));
        assert_eq!(parse_form(long.as_bytes()), Err(ParamError::ValueTooLong));
    }

    #[test]
    fn form_keeps_malformed_percent_literally() {
        let p = parse_form(b"a=%4&b=%&c=%zz&d=%41").expect("parse");
        assert_eq!(p.get("a"), Some("%4"));
        assert_eq!(p.get("b"), Some("%"));
        assert_eq!(p.get("c"), Some("%zz"));
        assert_eq!(p.get("d"), Some("A"));
    }

    #[test]
    fn merge_refuses_a_name_in_both() {
        let mut a = parse_form(b"x=1").expect("a");
        assert_eq!(
            a.merge(parse_form(b"x=1").expect("b")),
            Err(ParamError::Duplicate)
        );
        let mut a = parse_form(b"x=1").expect("a");
        a.merge(parse_form(b"y=2").expect("b")).expect("merge");
        assert_eq!(a.get("y"), Some("2"));
    }

    #[test]
    fn basic_auth_decodes_form_encoded_halves() {
        let mut headers = HeaderMap::new();
        let encoded = STANDARD.encode("my%20client:p%3Ass");
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).expect("hv"),
        );
        let creds = basic_auth(&headers).expect("ok").expect("some");
        assert_eq!(creds.username, "my client");
        assert_eq!(creds.password, "p:ss");
        let printed = format!("{creds:?}");
        assert!(
            printed.contains("my client") && !printed.contains("p:ss"),
            "{printed}"
        );
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert!(basic_auth(&headers).is_err());
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(basic_auth(&headers).expect("ok"), None);
        assert_eq!(bearer_token(&headers), Some("abc"));
    }

    #[test]
    fn host_name_strips_port_and_case() {
        let mut headers = HeaderMap::new();
        headers.insert(
            hyper::header::HOST,
            HeaderValue::from_static("Auth.Example.com:8443"),
        );
        assert_eq!(host_name(&headers).as_deref(), Some("auth.example.com"));
        headers.insert(hyper::header::HOST, HeaderValue::from_static("[::1]:80"));
        assert_eq!(host_name(&headers).as_deref(), Some("[::1]"));
    }

    #[test]
    fn forwarded_client_trusts_only_a_local_proxy_and_its_last_entry() {
        let local: std::net::SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let remote: std::net::SocketAddr = "203.0.113.9:5000".parse().expect("addr");
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("10.9.9.9, 198.51.100.7"),
        );
        assert_eq!(
            forwarded_client(&headers, local).ip().to_string(),
            "198.51.100.7"
        );
        assert_eq!(
            forwarded_client(&headers, remote),
            remote,
            "only a loopback peer is a trusted proxy"
        );
        headers.insert("x-forwarded-for", HeaderValue::from_static("not-an-ip"));
        assert_eq!(forwarded_client(&headers, local), local);
        assert_eq!(forwarded_client(&HeaderMap::new(), local), local);
    }

    #[test]
    fn cookie_finds_named_value() {
        let mut headers = HeaderMap::new();
        headers.insert(
            hyper::header::COOKIE,
            HeaderValue::from_static("a=1; org=acme; b=2"),
        );
        assert_eq!(cookie(&headers, "org"), Some("acme"));
        assert_eq!(cookie(&headers, "zz"), None);
    }
}
