//! OpenID Connect UserInfo (`GET` and `POST /oauth/userinfo`, `Authorization: Bearer`):
//! `sub` and the claims the access token's scope allows (`oauth::userinfo_claims`). A
//! token issued without `openid` is refused with `insufficient_scope`.

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use crate::app::App;
use crate::error::{ApiError, BearerError};
use crate::http::{self, Body};
use crate::oauth;
use crate::secret;
use crate::store::{self, grants};

pub async fn userinfo(app: &App, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let token = http::bearer_token(req.headers()).ok_or(ApiError::Bearer(BearerError::Missing))?;
    let token_hash = secret::sha256(token);
    let found = app
        .store
        .read(move |conn| {
            let found = store::grants::find_access(conn, &token_hash)?;
            let Some(token) = oauth::live(found, store::now()) else {
                return Ok(None);
            };
            let subject = grants::subject(conn, token.user_id, token.email, token.name)?;
            Ok(Some((token.scope, subject)))
        })
        .await?;
    let (scope, subject) = found.ok_or(ApiError::Bearer(BearerError::InvalidToken))?;
    let claims = oauth::userinfo_claims(scope.as_ref().map(oauth::Scope::as_str), &subject)
        .ok_or(ApiError::Bearer(BearerError::InsufficientScope))?;
    let mut response = http::json(StatusCode::OK, &serde_json::Value::Object(claims));
    http::no_store(&mut response);
    Ok(response)
}
