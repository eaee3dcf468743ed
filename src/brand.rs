//! Which brand a page shows: the brand registered for the request's Host (port stripped,
//! case-insensitive), else the client's own brand, else the built-in look. Also serves
//! brand logos and the embedded static assets.

use hyper::body::Bytes;
use hyper::header::HeaderMap;
use hyper::{Response, StatusCode};

use crate::app::App;
use crate::assets;
use crate::error::ApiError;
use crate::http::{self, Body, Params};
use crate::store;

const DEFAULT_NAME: &str = "oauthd";
const DEFAULT_COLOR: &str = "#2f6fde";

/// The look of one page.
#[derive(Debug, Clone)]
pub struct PageBrand {
    pub name: String,
    /// A validated `#rgb` / `#rrggbb` colour.
    pub color: String,
    /// What stands beside the name at the top of the page.
    pub mark: Mark,
}

/// The picture at the top of a page: one identity per page, so a brand without a logo
/// never shows oauthd's padlock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// oauthd's own padlock (the name beside it is the wordmark).
    Builtin,
    /// The brand's logo, from this URL (`/brand/logo`, with `?brand=` when the brand is
    /// not the Host's).
    Logo(String),
    /// A brand without a logo: its initial on its colour.
    Monogram(char),
}

impl PageBrand {
    /// oauthd's own look, for a Host no brand claims.
    pub fn builtin() -> PageBrand {
        PageBrand {
            name: DEFAULT_NAME.into(),
            color: DEFAULT_COLOR.into(),
            mark: Mark::Builtin,
        }
    }

    /// `#fff` or `#000`, whichever reads better on the brand colour (buttons, monogram).
    pub fn ink_on_color(&self) -> &'static str {
        ink_on(&self.color)
    }
}

/// Resolves the brand for a request's Host, falling back to `client_brand`.
pub async fn resolve(app: &App, headers: &HeaderMap, client_brand: Option<&str>) -> PageBrand {
    resolve_host(app, http::host_name(headers), client_brand).await
}

/// [`resolve`] for a Host name already read from the request (port stripped, lowercase).
pub async fn resolve_host(
    app: &App,
    host: Option<String>,
    client_brand: Option<&str>,
) -> PageBrand {
    let client_brand = client_brand.map(str::to_owned);
    let found = app
        .store
        .read(move |conn| {
            if let Some(brand) = host
                .as_deref()
                .map(|h| store::brands::find(conn, h))
                .transpose()?
                .flatten()
            {
                return Ok(Some((brand, true)));
            }
            match client_brand {
                Some(domain) => Ok(store::brands::find(conn, &domain)?.map(|b| (b, false))),
                None => Ok(None),
            }
        })
        .await;
    match found {
        Ok(Some((brand, is_host_brand))) => {
            let mark = match (brand.has_logo, is_host_brand) {
                (true, true) => Mark::Logo("/brand/logo".into()),
                (true, false) => {
                    Mark::Logo(format!("/brand/logo?brand={}", form_encode(&brand.domain)))
                }
                (false, _) => Mark::Monogram(initial(&brand.name)),
            };
            PageBrand {
                mark,
                color: brand
                    .color
                    .filter(|c| is_hex_color(c))
                    .unwrap_or_else(|| DEFAULT_COLOR.into()),
                name: brand.name,
            }
        }
        Ok(None) => PageBrand::builtin(),
        Err(e) => {
            tracing::warn!(error = %e, "brand lookup failed; using the default look");
            PageBrand::builtin()
        }
    }
}

/// The monogram letter of a brand name: its first letter or digit, upper-cased.
fn initial(name: &str) -> char {
    name.chars()
        .find(|c| c.is_alphanumeric())
        .and_then(|c| c.to_uppercase().next())
        .unwrap_or('?')
}

/// Black or white text on `color` (`#rgb` / `#rrggbb`), by WCAG relative luminance: the
/// better of the two always reaches a 4.5:1 contrast.
pub fn ink_on(color: &str) -> &'static str {
    let luminance = relative_luminance(color).unwrap_or(0.0);
    // Contrast with white is 1.05 / (L + 0.05), with black (L + 0.05) / 0.05.
    if 1.05 / (luminance + 0.05) >= (luminance + 0.05) / 0.05 {
        "#fff"
    } else {
        "#000"
    }
}

/// WCAG 2 relative luminance of a `#rgb` / `#rrggbb` colour.
fn relative_luminance(color: &str) -> Option<f64> {
    let hex = color.strip_prefix('#')?;
    let channel = |text: &str| u8::from_str_radix(text, 16).ok();
    let [r, g, b] = match hex.len() {
        3 => {
            let c: Vec<u8> = hex
                .chars()
                .map(|c| channel(&format!("{c}{c}")))
                .collect::<Option<_>>()?;
            [c[0], c[1], c[2]]
        }
        6 => [
            channel(hex.get(0..2)?)?,
            channel(hex.get(2..4)?)?,
            channel(hex.get(4..6)?)?,
        ],
        _ => return None,
    };
    let linear = |v: u8| {
        let v = f64::from(v) / 255.0;
        if v <= 0.039_28 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    Some(0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b))
}

/// `GET /brand/logo[?brand=DOMAIN]`: the brand's stored logo, or the built-in one.
pub async fn logo(
    app: &App,
    headers: &HeaderMap,
    query: &Params,
) -> Result<Response<Body>, ApiError> {
    let domain = query
        .non_empty("brand")
        .map(str::to_ascii_lowercase)
        .or_else(|| http::host_name(headers));
    let stored = match domain {
        Some(domain) => {
            app.store
                .read(move |conn| store::brands::logo(conn, &domain))
                .await?
        }
        None => None,
    };
    let (content_type, bytes) = match stored {
        Some(logo) => (
            static_content_type(&logo.content_type),
            Bytes::from(logo.bytes),
        ),
        None => (
            "image/svg+xml",
            Bytes::from_static(assets::file("default-logo.svg").unwrap_or_default()),
        ),
    };
    let mut response = http::bytes(StatusCode::OK, content_type, bytes);
    http::set_header(&mut response, "cache-control", "public, max-age=300");
    http::set_header(&mut response, "x-content-type-options", "nosniff");
    // An SVG opened on its own must not run script in our origin.
    http::set_header(
        &mut response,
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; sandbox",
    );
    Ok(response)
}

/// `GET /assets/NAME`: embedded CSS and JavaScript for the pages.
pub fn static_asset(name: &str) -> Result<Response<Body>, ApiError> {
    let content_type = match name.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => return Err(ApiError::NotFound),
    };
    if name.contains('/') || name.contains("..") {
        return Err(ApiError::NotFound);
    }
    let bytes = assets::file(name).ok_or(ApiError::NotFound)?;
    let mut response = http::bytes(StatusCode::OK, content_type, Bytes::from_static(bytes));
    http::set_header(&mut response, "cache-control", "public, max-age=3600");
    http::set_header(&mut response, "x-content-type-options", "nosniff");
    Ok(response)
}

fn static_content_type(stored: &str) -> &'static str {
    match stored {
        "image/png" => "image/png",
        "image/jpeg" => "image/jpeg",
        "image/webp" => "image/webp",
        "image/svg+xml" => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

/// `#rgb` or `#rrggbb`: the only colours that reach a page's CSS.
pub fn is_hex_color(color: &str) -> bool {
    color
        .strip_prefix('#')
        .is_some_and(|hex| matches!(hex.len(), 3 | 6) && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn form_encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hex_colours_pass() {
        assert!(is_hex_color("#0a7d4f"));
        assert!(is_hex_color("#fff"));
        assert!(!is_hex_color("red"));
        assert!(!is_hex_color("#12345"));
        assert!(!is_hex_color("#fff;}body{x"));
    }

    #[test]
    fn ink_on_a_brand_colour_is_the_readable_one() {
        let table = [
            ("#2f6fde", "#fff"),
            ("#0a7d4f", "#fff"),
            ("#000", "#fff"),
            ("#ffcc00", "#000"),
            ("#fff", "#000"),
            ("#7fdbff", "#000"),
        ];
        for (color, ink) in table {
            assert_eq!(ink_on(color), ink, "{color}");
        }
    }

    #[test]
    fn a_monogram_is_the_first_letter_or_digit() {
        let table = [
            ("acme", 'A'),
            ("  «Zeta» Farms", 'Z'),
            ("9 Lives", '9'),
            ("élan", 'É'),
            ("!!!", '?'),
            ("", '?'),
        ];
        for (name, letter) in table {
            assert_eq!(initial(name), letter, "{name:?}");
        }
    }
}
