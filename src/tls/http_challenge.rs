//! The plain-HTTP listener of `--http-listen` (port 80): answers ACME HTTP-01 challenges
//! and sends everything else to https with a 308, to a configured domain only (the Host
//! header picks among them, never adds one).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::challenges::Challenges;
use crate::error::PlainHttp;
use crate::http::{self, Body};

const CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// Connections served at once; more wait in the kernel's accept queue, so a flood on
/// port 80 cannot exhaust file descriptors.
const MAX_CONNECTIONS: usize = 256;

/// Where the listener redirects to: the configured domains and the HTTPS port.
#[derive(Debug, Clone)]
pub struct HttpsTarget {
    pub domains: Vec<String>,
    pub https_port: u16,
}

impl HttpsTarget {
    /// `https://DOMAIN[:PORT]PATH` for a request that named `host` (maybe with a port).
    fn location(&self, host: Option<&str>, path_and_query: &str) -> String {
        let named = host
            .map(|h| h.rsplit_once(':').map_or(h, |(name, _)| name))
            .map(str::to_ascii_lowercase);
        let domain = named
            .and_then(|n| self.domains.iter().find(|d| d.eq_ignore_ascii_case(&n)))
            .or(self.domains.first())
            .map_or("localhost", String::as_str);
        match self.https_port {
            443 => format!("https://{domain}{path_and_query}"),
            port => format!("https://{domain}:{port}{path_and_query}"),
        }
    }
}

/// Serves `listener` forever.
pub async fn run(listener: TcpListener, challenges: Arc<Challenges>, target: HttpsTarget) {
    let target = Arc::new(target);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "http listener: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (challenges, target) = (Arc::clone(&challenges), Arc::clone(&target));
        let service = service_fn(move |req: Request<Incoming>| {
            let (challenges, asked) = (Arc::clone(&challenges), asked(&target, &req));
            async move { Ok::<_, Infallible>(respond(&challenges, asked).await) }
        });
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(slot);
        });
    }
}

/// What a request asks for: a challenge's answer, or else the redirect it gets at once.
enum Asked {
    Challenge(String),
    Redirect(Response<Body>),
}

fn asked<B>(target: &HttpsTarget, req: &Request<B>) -> Asked {
    match req.uri().path().strip_prefix(CHALLENGE_PREFIX) {
        Some(token) => Asked::Challenge(token.to_owned()),
        None => Asked::Redirect(redirect(target, req)),
    }
}

/// The key authorization of the token asked for (offered here or, read from the
/// database, by another instance), or the redirect.
async fn respond(challenges: &Challenges, asked: Asked) -> Response<Body> {
    let token = match asked {
        Asked::Challenge(token) => token,
        Asked::Redirect(redirect) => return redirect,
    };
    match challenges.http_answer(&token).await {
        Some(key_authorization) => http::bytes(
            PlainHttp::Challenge.status(),
            "application/octet-stream",
            key_authorization.into(),
        ),
        None => http::text(PlainHttp::UnknownChallenge.status(), "no such challenge\n"),
    }
}

fn redirect<B>(target: &HttpsTarget, req: &Request<B>) -> Response<Body> {
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(req.uri().host());
    let path_and_query = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let mut response = http::text(PlainHttp::ToHttps.status(), "use https\n");
    http::set_header(
        &mut response,
        "location",
        &target.location(host, path_and_query),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_only_to_configured_domains() {
        let t = HttpsTarget {
            domains: vec!["a.example".into(), "b.example".into()],
            https_port: 443,
        };
        for (host, want) in [
            (Some("B.example:80"), "https://b.example/x?y"),
            (Some("evil.example"), "https://a.example/x?y"),
            (None, "https://a.example/x?y"),
        ] {
            assert_eq!(t.location(host, "/x?y"), want, "{host:?}");
        }
        let t = HttpsTarget {
            https_port: 8443,
            ..t
        };
        assert_eq!(
            t.location(Some("a.example"), "/"),
            "https://a.example:8443/"
        );
    }

    #[tokio::test]
    async fn answers_offered_challenges_only() {
        let c = Challenges::default();
        c.offer_http("tok", "tok.thumb").await;
        let t = HttpsTarget {
            domains: vec!["a.example".into()],
            https_port: 443,
        };
        let get = |uri: &str| asked(&t, &Request::get(uri).body(()).expect("request"));
        let r = respond(&c, get("/.well-known/acme-challenge/tok")).await;
        assert_eq!(r.status(), PlainHttp::Challenge.status());
        let r = respond(&c, get("/.well-known/acme-challenge/other")).await;
        assert_eq!(r.status(), PlainHttp::UnknownChallenge.status());
        let r = respond(&c, get("/authorize?x=1")).await;
        assert_eq!(r.status(), PlainHttp::ToHttps.status());
        assert_eq!(
            r.headers().get("location").and_then(|v| v.to_str().ok()),
            Some("https://a.example/authorize?x=1")
        );
    }
}
