//! Which grant types a client may use, and the scope of a client-credentials token. A
//! client registers its grant types (`client add --grant`); using another one is
//! `unauthorized_client` (RFC 6749 §5.2).

use super::scope::Scope;

/// The grant types oauthd knows, by their registered names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantKind {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
    DeviceCode,
}

/// The full URN RFC 8628 gives the device grant at the token endpoint.
pub const DEVICE_CODE_URN: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// What a client is registered for when `client add` names no `--grant`.
pub const DEFAULT_GRANTS: [GrantKind; 2] = [GrantKind::AuthorizationCode, GrantKind::RefreshToken];

impl GrantKind {
    pub const ALL: [GrantKind; 4] = [
        GrantKind::AuthorizationCode,
        GrantKind::RefreshToken,
        GrantKind::ClientCredentials,
        GrantKind::DeviceCode,
    ];

    /// The name stored and shown (`client show`); the device grant's short name.
    pub fn name(self) -> &'static str {
        match self {
            GrantKind::AuthorizationCode => "authorization_code",
            GrantKind::RefreshToken => "refresh_token",
            GrantKind::ClientCredentials => "client_credentials",
            GrantKind::DeviceCode => "device_code",
        }
    }

    /// The `grant_type` value at the token endpoint (and in server metadata).
    pub fn grant_type(self) -> &'static str {
        match self {
            GrantKind::DeviceCode => DEVICE_CODE_URN,
            other => other.name(),
        }
    }

    /// A stored name (or the device grant's URN) back to its kind.
    pub fn from_name(name: &str) -> Option<GrantKind> {
        GrantKind::ALL
            .into_iter()
            .find(|kind| kind.name() == name || kind.grant_type() == name)
    }
}

/// Why a client may not use a grant type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantRefusal {
    /// The client did not register this grant type.
    NotRegistered,
    /// Client credentials need a confidential client (it has no user to speak for it).
    NeedsConfidentialClient,
}

/// May a client registered for the grant types named `registered` use `grant`?
pub fn may_use_grant<S: AsRef<str>>(
    registered: &[S],
    public: bool,
    grant: GrantKind,
) -> Result<(), GrantRefusal> {
    let listed = registered
        .iter()
        .any(|name| GrantKind::from_name(name.as_ref()) == Some(grant));
    if !listed {
        return Err(GrantRefusal::NotRegistered);
    }
    if grant == GrantKind::ClientCredentials && public {
        return Err(GrantRefusal::NeedsConfidentialClient);
    }
    Ok(())
}

/// Does a grant issued to a client registered for `registered` come with a refresh token?
/// Only when the client registered the `refresh_token` grant: a token it could never
/// present would only be a secret to leak. Applies to code and device-code exchanges.
pub fn issues_refresh_token<S: AsRef<str>>(registered: &[S]) -> bool {
    registered
        .iter()
        .any(|name| GrantKind::from_name(name.as_ref()) == Some(GrantKind::RefreshToken))
}

/// The scope names a client may request (`None`: any). A request naming another is refused.
pub fn scope_allowed(allowed: Option<&str>, requested: Option<&str>) -> bool {
    let Some(allowed) = allowed else {
        return true;
    };
    requested
        .unwrap_or_default()
        .split_whitespace()
        .all(|name| allowed.split_whitespace().any(|a| a == name))
}

/// A requested scope outside the client's allowed scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeNotAllowed;

/// The scope of a token a client gets for itself (client credentials): without an
/// allowed-scope list (`None`) what it asks for; with one, what it asks for if every name
/// is allowed, or the whole list when it asks for nothing. Names appear once, in order.
pub fn client_scope(
    allowed: Option<&str>,
    requested: Option<&Scope>,
) -> Result<Option<String>, ScopeNotAllowed> {
    let requested = requested.map(Scope::as_str);
    if !scope_allowed(allowed, requested) {
        return Err(ScopeNotAllowed);
    }
    let mut names: Vec<&str> = Vec::new();
    for name in requested.unwrap_or_default().split_whitespace() {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    if names.is_empty() {
        let all: Vec<&str> = allowed.unwrap_or_default().split_whitespace().collect();
        return Ok((!all.is_empty()).then(|| all.join(" ")));
    }
    Ok(Some(names.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use GrantKind::*;

    #[test]
    fn a_client_uses_only_the_grants_it_registered() {
        let default = "authorization_code refresh_token";
        let table = [
            (default, false, AuthorizationCode, Ok(())),
            (default, true, RefreshToken, Ok(())),
            (
                default,
                false,
                ClientCredentials,
                Err(GrantRefusal::NotRegistered),
            ),
            (default, true, DeviceCode, Err(GrantRefusal::NotRegistered)),
            ("client_credentials", false, ClientCredentials, Ok(())),
            (
                "client_credentials",
                false,
                AuthorizationCode,
                Err(GrantRefusal::NotRegistered),
            ),
            (
                "client_credentials",
                true,
                ClientCredentials,
                Err(GrantRefusal::NeedsConfidentialClient),
            ),
            ("device_code", true, DeviceCode, Ok(())),
            ("device_code refresh_token", false, RefreshToken, Ok(())),
            (
                "",
                false,
                AuthorizationCode,
                Err(GrantRefusal::NotRegistered),
            ),
        ];
        for (registered, public, grant, expected) in table {
            assert_eq!(
                may_use_grant(
                    &registered.split_whitespace().collect::<Vec<_>>(),
                    public,
                    grant
                ),
                expected,
                "{registered:?} public={public} {grant:?}"
            );
        }
    }

    #[test]
    fn a_refresh_token_only_for_clients_registered_for_it() {
        let table = [
            ("authorization_code refresh_token", true),
            ("authorization_code", false),
            ("device_code", false),
            ("device_code refresh_token", true),
            ("client_credentials", false),
            ("refresh_token", true),
            ("", false),
            // Names compare exactly: no case folding, no prefix.
            ("Refresh_Token", false),
            ("refresh", false),
        ];
        for (registered, expected) in table {
            let registered: Vec<&str> = registered.split_whitespace().collect();
            assert_eq!(
                issues_refresh_token(&registered),
                expected,
                "{registered:?}"
            );
        }
    }

    #[test]
    fn names_and_grant_types_round_trip() {
        for kind in GrantKind::ALL {
            assert_eq!(GrantKind::from_name(kind.name()), Some(kind));
            assert_eq!(GrantKind::from_name(kind.grant_type()), Some(kind));
        }
        assert_eq!(DeviceCode.grant_type(), DEVICE_CODE_URN);
        assert_eq!(GrantKind::from_name("password"), None);
    }

    #[test]
    fn client_credentials_scope_stays_within_the_allowed_list() {
        type Row = (
            Option<&'static str>,
            Option<&'static str>,
            Result<Option<&'static str>, ScopeNotAllowed>,
        );
        let table: [Row; 9] = [
            (None, None, Ok(None)),
            (None, Some("a b"), Ok(Some("a b"))),
            (None, Some("b b a"), Ok(Some("b a"))),
            (Some("a b"), None, Ok(Some("a b"))),
            (Some("a b"), Some("b"), Ok(Some("b"))),
            (Some("a b"), Some("  "), Ok(Some("a b"))),
            (Some("a b"), Some("c"), Err(ScopeNotAllowed)),
            (Some("a b"), Some("a c"), Err(ScopeNotAllowed)),
            (Some(""), Some("a"), Err(ScopeNotAllowed)),
        ];
        for (allowed, requested, expected) in table {
            let requested = requested.map(Scope::new);
            assert_eq!(
                client_scope(allowed, requested.as_ref()),
                expected.map(|s| s.map(str::to_owned)),
                "{allowed:?} {requested:?}"
            );
        }
    }

    #[test]
    fn allowed_scopes_limit_requests() {
        let table = [
            (None, Some("anything at all"), true),
            (Some("openid email"), None, true),
            (Some("openid email"), Some(""), true),
            (Some("openid email"), Some("openid"), true),
            (Some("openid email"), Some("email openid"), true),
            (Some("openid email"), Some("openid profile"), false),
            (Some("openid email"), Some("openidemail"), false),
            (Some(""), Some("openid"), false),
        ];
        for (allowed, requested, ok) in table {
            assert_eq!(
                scope_allowed(allowed, requested),
                ok,
                "{allowed:?} {requested:?}"
            );
        }
    }
}
