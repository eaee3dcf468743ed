//! CSRF protection of the sign-in form, bound to a server key.
//!
//! The browser holds a cookie `NONCE.TAG`: a random per-browser nonce and
//! `TAG = HMAC(key, "cookie" ‖ NONCE)`. The form carries `HMAC(key, "form" ‖ NONCE)`. Only
//! this server can make either, so a cookie planted by someone else (any length, any
//! value) is neither reused for a page nor accepted with a form: the server never signs a
//! nonce it did not choose. Over https the cookie is `__Host-` prefixed and `Secure`, so a
//! sibling subdomain or a plain-http page cannot plant or overwrite it.
//!
//! The key is 32 random bytes made once per database and kept in it (`server_secrets`),
//! so every instance serving one database accepts the forms any of them showed, and a
//! restart keeps open forms working. It is never logged or shown; whoever reads the
//! database could forge a form token, but such a reader holds every account already.
//!
//! This module decides; `authorize.rs` reads the headers and renders.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use hyper::header::HeaderMap;
use sha2::Sha256;

use crate::http;
use crate::secret::fill_random;
use crate::store::{server_secrets, Store, StoreError};

/// The key's name in `server_secrets`.
const KEY_NAME: &str = "csrf_key";

/// Cookie names: the `__Host-` prefix makes browsers insist on `Secure`, `Path=/` and no
/// `Domain`, which only an https origin can set.
const PLAIN_COOKIE: &str = "oauthd_csrf";
const HOST_COOKIE: &str = "__Host-oauthd_csrf";
/// Length of a base64url (unpadded) 32-byte value: the nonce and each tag.
const ENCODED_LEN: usize = 43;

/// The server key and the cookie rules that follow from the issuer's scheme.
pub struct Csrf {
    key: Vec<u8>,
    /// The issuer is https: `__Host-` name and `Secure`.
    secure: bool,
}

/// What a page needs: the token for its form and the `Set-Cookie` header value.
pub struct Issued {
    pub form_token: String,
    pub set_cookie: String,
}

impl Csrf {
    /// The database's key, made and stored by the first instance that needs it; on the
    /// calling (blocking) thread. `https_issuer` selects the `__Host-` / `Secure` cookie.
    pub fn load(store: &Store, https_issuer: bool) -> Result<Csrf, StoreError> {
        let mut fresh = [0u8; 32];
        fill_random(&mut fresh);
        let key = store.with_conn(|db| server_secrets::get_or_create(db, KEY_NAME, &fresh))?;
        Ok(Csrf {
            key,
            secure: https_issuer,
        })
    }

    /// The browser's own cookie when this server issued it (so several open tabs keep
    /// working), else a new one; and the form token that goes with it.
    pub fn issue(&self, headers: &HeaderMap) -> Issued {
        let nonce = match self.authentic_nonce(headers) {
            Some(nonce) => nonce.to_owned(),
            None => {
                let mut bytes = [0u8; 32];
                fill_random(&mut bytes);
                URL_SAFE_NO_PAD.encode(bytes)
            }
        };
        let cookie_value = format!("{nonce}.{}", self.tag(b"cookie", &nonce));
        let attributes = if self.secure {
            "Path=/; Secure; HttpOnly; SameSite=Lax"
        } else {
            "Path=/; HttpOnly; SameSite=Lax"
        };
        Issued {
            form_token: self.tag(b"form", &nonce),
            set_cookie: format!("{}={cookie_value}; {attributes}", self.cookie_name()),
        }
    }

    /// Whether `submitted` is the form token of the browser's (authentic) cookie,
    /// compared in constant time.
    pub fn verify(&self, headers: &HeaderMap, submitted: Option<&str>) -> bool {
        let (Some(nonce), Some(submitted)) = (self.authentic_nonce(headers), submitted) else {
            return false;
        };
        let Ok(submitted) = URL_SAFE_NO_PAD.decode(submitted) else {
            return false;
        };
        self.mac(b"form", nonce).verify_slice(&submitted).is_ok()
    }

    fn cookie_name(&self) -> &'static str {
        if self.secure {
            HOST_COOKIE
        } else {
            PLAIN_COOKIE
        }
    }

    /// The nonce of the browser's cookie, if the cookie carries this server's tag.
    fn authentic_nonce<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        let value = http::cookie(headers, self.cookie_name())?;
        let (nonce, tag) = value.split_once('.')?;
        if nonce.len() != ENCODED_LEN || tag.len() != ENCODED_LEN {
            return None;
        }
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        self.mac(b"cookie", nonce).verify_slice(&tag).ok()?;
        Some(nonce)
    }

    /// A tag over `fields` under this process's key, so a form can carry facts the
    /// server must trust when it comes back (the consent screen's user). Each field is
    /// length-prefixed, so no two field lists share a tag.
    pub fn seal(&self, fields: &[&str]) -> String {
        self.tag(b"seal", &sealed_text(fields))
    }

    /// Whether `tag` is [`Csrf::seal`] of `fields`, compared in constant time.
    pub fn unseal(&self, fields: &[&str], tag: Option<&str>) -> bool {
        let Some(Ok(tag)) = tag.map(|t| URL_SAFE_NO_PAD.decode(t)) else {
            return false;
        };
        self.mac(b"seal", &sealed_text(fields))
            .verify_slice(&tag)
            .is_ok()
    }

    fn tag(&self, purpose: &[u8], nonce: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(purpose, nonce).finalize().into_bytes())
    }

    /// HMAC-SHA256 over `purpose ‖ 0 ‖ nonce`: one key, two tags that cannot stand in
    /// for each other.
    fn mac(&self, purpose: &[u8], nonce: &str) -> Hmac<Sha256> {
        // HMAC takes a key of any length; 32 bytes cannot fail.
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(purpose);
        mac.update(&[0]);
        mac.update(nonce.as_bytes());
        mac
    }
}

fn sealed_text(fields: &[&str]) -> String {
    fields.iter().map(|f| format!("{}:{f}", f.len())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Csrf {
        /// A fresh random key, as another database's would be.
        fn new(https_issuer: bool) -> Csrf {
            let mut key = vec![0u8; 32];
            fill_random(&mut key);
            Csrf {
                key,
                secure: https_issuer,
            }
        }
    }

    #[test]
    fn every_instance_of_one_database_has_the_same_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("csrf.db");
        let first = Csrf::load(&Store::open(&path).expect("open"), false).expect("load");
        let second = Csrf::load(&Store::open(&path).expect("open"), false).expect("load");
        let issued = first.issue(&HeaderMap::new());
        assert!(second.verify(&browser_with(&issued), Some(&issued.form_token)));
        let elsewhere = tempfile::tempdir().expect("tempdir");
        let other = Store::open(&elsewhere.path().join("other.db")).expect("open");
        let other = Csrf::load(&other, false).expect("load");
        assert!(!other.verify(&browser_with(&issued), Some(&issued.form_token)));
    }

    #[test]
    fn a_seal_opens_only_for_its_own_fields_and_key() {
        let csrf = Csrf::new(false);
        let tag = csrf.seal(&["user", "client"]);
        assert!(csrf.unseal(&["user", "client"], Some(&tag)));
        assert!(!csrf.unseal(&["userc", "lient"], Some(&tag)));
        assert!(!csrf.unseal(&["user", "client", ""], Some(&tag)));
        assert!(!csrf.unseal(&["user", "client"], None));
        assert!(!csrf.unseal(&["user", "client"], Some("not base64!")));
        assert!(!Csrf::new(false).unseal(&["user", "client"], Some(&tag)));
    }
    use hyper::header::{HeaderValue, COOKIE};

    /// The headers a browser sends back after receiving `issued`.
    fn browser_with(issued: &Issued) -> HeaderMap {
        let pair = issued.set_cookie.split(';').next().expect("pair");
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_str(pair).expect("hv"));
        headers
    }

    #[test]
    fn the_form_token_matches_only_its_own_cookie() {
        let csrf = Csrf::new(false);
        let issued = csrf.issue(&HeaderMap::new());
        let headers = browser_with(&issued);
        assert!(csrf.verify(&headers, Some(&issued.form_token)));
        assert!(!csrf.verify(&headers, None));
        assert!(!csrf.verify(&headers, Some("forged")));
        assert!(!csrf.verify(&HeaderMap::new(), Some(&issued.form_token)));
        let other = csrf.issue(&HeaderMap::new());
        assert!(!csrf.verify(&headers, Some(&other.form_token)));
        // The browser's cookie is reused, so a second tab's form works too.
        assert_eq!(csrf.issue(&headers).form_token, issued.form_token);
    }

    #[test]
    fn another_key_accepts_nothing() {
        let ours = Csrf::new(false);
        let theirs = Csrf::new(false);
        let issued = theirs.issue(&HeaderMap::new());
        let headers = browser_with(&issued);
        assert!(!ours.verify(&headers, Some(&issued.form_token)));
        assert_ne!(ours.issue(&headers).form_token, issued.form_token);
    }

    #[test]
    fn planted_cookies_of_any_shape_are_refused_and_replaced() {
        let csrf = Csrf::new(false);
        let fake = "A".repeat(ENCODED_LEN);
        for planted in [
            String::new(),
            "x".into(),
            fake.clone(),
            format!("{fake}.{fake}"),
            format!("{fake}.{}", "B".repeat(200)),
            "é".repeat(40),
        ] {
            let mut headers = HeaderMap::new();
            let Ok(value) = HeaderValue::from_str(&format!("{PLAIN_COOKIE}={planted}")) else {
                continue;
            };
            headers.insert(COOKIE, value);
            // The old double-submit scheme accepted the cookie's own value as the token.
            assert!(!csrf.verify(&headers, Some(&planted)), "{planted}");
            assert!(!csrf.verify(&headers, Some(&fake)), "{planted}");
            let issued = csrf.issue(&headers);
            assert!(!issued.set_cookie.contains(&format!("={planted};")));
        }
    }

    #[test]
    fn https_issuers_get_a_host_prefixed_secure_cookie() {
        let csrf = Csrf::new(true);
        let issued = csrf.issue(&HeaderMap::new());
        assert!(issued.set_cookie.starts_with("__Host-oauthd_csrf="));
        assert!(issued.set_cookie.contains("; Secure"));
        assert!(issued.set_cookie.contains("Path=/;"));
        assert!(!issued.set_cookie.contains("Domain"));
        assert!(csrf.verify(&browser_with(&issued), Some(&issued.form_token)));
        // A plain-named cookie (plantable over http or from a subdomain) is not read.
        let plain = Csrf {
            key: csrf.key.clone(),
            secure: false,
        }
        .issue(&HeaderMap::new());
        assert!(!csrf.verify(&browser_with(&plain), Some(&plain.form_token)));
        let http = Csrf::new(false).issue(&HeaderMap::new());
        assert!(http.set_cookie.starts_with("oauthd_csrf="));
        assert!(!http.set_cookie.contains("Secure"));
    }
}
