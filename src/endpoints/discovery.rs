//! The JWK Set at `jwks_uri`: the public halves of the published id_token signing keys
//! (`oidc_keys::jwks`). Cached briefly by relying parties; a rotation publishes the new
//! key long before it signs, so a cache this short never misses a signing key.

use hyper::{Response, StatusCode};

use crate::app::App;
use crate::error::ApiError;
use crate::http::{self, Body};
use crate::oidc_keys;

/// `GET /oauth/jwks`.
pub async fn jwks(app: &App) -> Result<Response<Body>, ApiError> {
    let set = oidc_keys::jwks(&app.store).await?;
    let mut response = http::json(StatusCode::OK, &set);
    http::set_header(&mut response, "content-type", "application/jwk-set+json");
    http::set_header(&mut response, "cache-control", "public, max-age=300");
    Ok(response)
}
