//! Reading the parameters of the token-endpoint family (`/oauth/token`, `/oauth/revoke`,
//! `/oauth/introspect`), shared by `token` and `token_management`.

use hyper::body::Incoming;
use hyper::Request;

use crate::error::{ApiError, Family};
use crate::http::{self, ParamError, Params};

/// Maps a parameter parsing failure to the token endpoint's error family.
pub fn param_error(error: ParamError) -> ApiError {
    ApiError::bad_params(Family::OAuth, error)
}

/// Reads the parameters from the query string and the body (form or JSON) together; a
/// name in both counts as sent twice.
pub async fn read_params(
    req: Request<Incoming>,
) -> Result<(hyper::http::request::Parts, Params), ApiError> {
    let mut params = http::query_params(&req).map_err(param_error)?;
    let (parts, body) = http::read_body(req).await.map_err(param_error)?;
    params
        .merge(http::body_params(&parts.headers, &body).map_err(param_error)?)
        .map_err(param_error)?;
    Ok((parts, params))
}
