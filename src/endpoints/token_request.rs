//! The token endpoint's request, typed per grant type (after the strict parameter
//! parsing, which already refused duplicates): the handler matches on variants, never on
//! parameter names. The grant type is read first and the rest only after client
//! authentication, so a request wrong in both is answered `invalid_client`.

use crate::error::{ApiError, OAuthErrorCode};
use crate::http::Params;
use crate::oauth::{GrantKind, RedirectUri, Scope, DEVICE_CODE_URN};
use crate::secret::Secret;

/// The grant types this server supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
    DeviceCode,
}

/// A token request of one grant type, with the parameters that grant type reads.
#[derive(Debug)]
pub enum GrantTypeReq {
    AuthorizationCode {
        code: Secret,
        /// Must equal the authorization's when that named one.
        redirect_uri: Option<RedirectUri>,
        code_verifier: Option<String>,
    },
    RefreshToken {
        refresh_token: Secret,
        /// A narrower scope for this access token; the refresh token keeps the grant's.
        scope: Option<Scope>,
    },
    /// RFC 6749 §4.4: a confidential client asks for a token for itself.
    ClientCredentials { scope: Option<Scope> },
    /// RFC 8628 §3.4: a device polls for the outcome of its authorization.
    DeviceCode { device_code: Secret },
}

fn invalid(code: OAuthErrorCode, description: &'static str) -> ApiError {
    ApiError::OAuth(code, description)
}

impl GrantType {
    /// The `grant_type` parameter: required, and one of the two supported.
    pub fn parse(params: &Params) -> Result<GrantType, ApiError> {
        match params.non_empty("grant_type") {
            None => Err(invalid(
                OAuthErrorCode::InvalidRequest,
                "grant_type is required",
            )),
            Some("authorization_code") => Ok(GrantType::AuthorizationCode),
            Some("refresh_token") => Ok(GrantType::RefreshToken),
            Some("client_credentials") => Ok(GrantType::ClientCredentials),
            Some(DEVICE_CODE_URN) => Ok(GrantType::DeviceCode),
            Some(_) => Err(invalid(
                OAuthErrorCode::UnsupportedGrantType,
                "grant_type must be authorization_code, refresh_token, client_credentials or urn:ietf:params:oauth:grant-type:device_code",
            )),
        }
    }

    /// The rule book's name for this grant type.
    pub fn kind(self) -> GrantKind {
        match self {
            GrantType::AuthorizationCode => GrantKind::AuthorizationCode,
            GrantType::RefreshToken => GrantKind::RefreshToken,
            GrantType::ClientCredentials => GrantKind::ClientCredentials,
            GrantType::DeviceCode => GrantKind::DeviceCode,
        }
    }
}

impl GrantTypeReq {
    /// The parameters of `grant`; a required one missing is `invalid_request`.
    pub fn parse(grant: GrantType, params: &Params) -> Result<GrantTypeReq, ApiError> {
        let required = |name, missing| {
            params
                .non_empty(name)
                .map(Secret::new)
                .ok_or(invalid(OAuthErrorCode::InvalidRequest, missing))
        };
        match grant {
            GrantType::AuthorizationCode => {
                let code = required("code", "code is required")?;
                let redirect_uri = match params.non_empty("redirect_uri") {
                    Some(raw) => Some(RedirectUri::parse(raw).map_err(|_| {
                        invalid(
                            OAuthErrorCode::InvalidGrant,
                            "redirect_uri does not match the authorization",
                        )
                    })?),
                    None => None,
                };
                Ok(GrantTypeReq::AuthorizationCode {
                    code,
                    redirect_uri,
                    code_verifier: params.non_empty("code_verifier").map(str::to_owned),
                })
            }
            GrantType::RefreshToken => Ok(GrantTypeReq::RefreshToken {
                refresh_token: required("refresh_token", "refresh_token is required")?,
                scope: params.non_empty("scope").map(Scope::new),
            }),
            GrantType::ClientCredentials => Ok(GrantTypeReq::ClientCredentials {
                scope: params.non_empty("scope").map(Scope::new),
            }),
            GrantType::DeviceCode => Ok(GrantTypeReq::DeviceCode {
                device_code: required("device_code", "device_code is required")?,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse_form;

    fn parse(form: &str) -> Result<GrantTypeReq, ApiError> {
        let params = parse_form(form.as_bytes()).unwrap();
        GrantTypeReq::parse(GrantType::parse(&params)?, &params)
    }

    fn refused(form: &str) -> (OAuthErrorCode, &'static str) {
        match parse(form) {
            Err(ApiError::OAuth(code, description)) => (code, description),
            other => panic!("{form}: {other:?}"),
        }
    }

    #[test]
    fn each_grant_type_reads_its_own_parameters() {
        match parse("grant_type=authorization_code&code=c&redirect_uri=https://a.example/cb&code_verifier=v&scope=ignored").unwrap() {
            GrantTypeReq::AuthorizationCode { code, redirect_uri, code_verifier } => {
                assert_eq!(code.expose(), "c");
                assert_eq!(redirect_uri.unwrap().as_str(), "https://a.example/cb");
                assert_eq!(code_verifier.as_deref(), Some("v"));
            }
            other => panic!("{other:?}"),
        }
        match parse("grant_type=refresh_token&refresh_token=r&scope=a+b&code=ignored").unwrap() {
            GrantTypeReq::RefreshToken {
                refresh_token,
                scope,
            } => {
                assert_eq!(refresh_token.expose(), "r");
                assert_eq!(scope, Some(Scope::new("a b")));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_or_unknown_parameters_are_refused() {
        use OAuthErrorCode::*;
        let table = [
            ("", (InvalidRequest, "grant_type is required")),
            ("grant_type=", (InvalidRequest, "grant_type is required")),
            (
                "grant_type=password",
                (
                    UnsupportedGrantType,
                    "grant_type must be authorization_code, refresh_token, client_credentials or urn:ietf:params:oauth:grant-type:device_code",
                ),
            ),
            (
                "grant_type=authorization_code",
                (InvalidRequest, "code is required"),
            ),
            (
                "grant_type=authorization_code&code=",
                (InvalidRequest, "code is required"),
            ),
            (
                "grant_type=authorization_code&code=c&redirect_uri=not%20a%20uri",
                (
                    InvalidGrant,
                    "redirect_uri does not match the authorization",
                ),
            ),
            (
                "grant_type=refresh_token",
                (InvalidRequest, "refresh_token is required"),
            ),
            (
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code",
                (InvalidRequest, "device_code is required"),
            ),
        ];
        for (form, expected) in table {
            assert_eq!(refused(form), expected, "{form}");
        }
    }

    #[test]
    fn a_parsed_request_never_prints_its_secrets() {
        let printed = format!(
            "{:?}",
            parse("grant_type=refresh_token&refresh_token=sekrit").unwrap()
        );
        assert!(!printed.contains("sekrit"), "{printed}");
    }
}
