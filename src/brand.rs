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
    /// Where the page's logo comes from (`/brand/logo`, with `?brand=` when the brand is
    /// not the Host's).
    pub logo_url: String,
}

impl PageBrand {
    fn default_brand() -> PageBrand {
        PageBrand {
            name: DEFAULT_NAME.into(),
            color: DEFAULT_COLOR.into(),
            logo_url: "/brand/logo".into(),
        }
    }
}

/// Resolves the brand for a request's Host, falling back to `client_brand`.
pub async fn resolve(app: &App, headers: &HeaderMap, client_brand: Option<&str>) -> PageBrand {
    let host = http::host_name(headers);
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
        Ok(Some((brand, is_host_brand))) => PageBrand {
            logo_url: if is_host_brand {
                "/brand/logo".into()
            } else {
                format!("/brand/logo?brand={}", form_encode(&brand.domain))
            },
            color: brand
                .color
                .filter(|c| is_hex_color(c))
                .unwrap_or_else(|| DEFAULT_COLOR.into()),
            name: brand.name,
        },
        Ok(None) => PageBrand::default_brand(),
        Err(e) => {
            tracing::warn!(error = %e, "brand lookup failed; using the default look");
            PageBrand::default_brand()
        }
    }
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
}
