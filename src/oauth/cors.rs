//! Which browser origins may read oauthd's answers (CORS). Origins are registered per
//! client (`client add --allowed-origin`) and matched exactly. An endpoint whose request
//! names a client (token, revocation) answers only that client's origins; one that names
//! none (a preflight, the resource API) answers any registered origin. Answers never carry
//! a wildcard and never allow credentials (cookies): the endpoints take tokens and client
//! credentials in headers or the body, which an allowed page sends explicitly.

/// Request headers a page may send (`Authorization` for Basic and Bearer).
pub const ALLOWED_HEADERS: &str = "authorization, content-type";
/// Seconds a browser may cache a preflight answer.
pub const PREFLIGHT_MAX_AGE: &str = "600";
/// Response headers a page may read besides the CORS-safelisted ones.
pub const EXPOSED_HEADERS: &str = "www-authenticate";

/// Whose registered origins a request is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginScope<'a> {
    /// The origins of this one client.
    Client(&'a str),
    /// The origins of any client.
    AnyClient,
    /// None: this request gets no CORS headers at all.
    Nobody,
}

/// The origins to check for a request with `Origin: origin`, naming `named_client` (the
/// token and revocation endpoints) or no client (`None` for `names_clients = false`).
pub fn origin_scope<'a>(
    origin: Option<&str>,
    names_clients: bool,
    named_client: Option<&'a str>,
) -> OriginScope<'a> {
    // `null` is an opaque origin (a sandboxed frame, a file): never registrable.
    match origin {
        None | Some("null") | Some("") => OriginScope::Nobody,
        Some(_) => match (names_clients, named_client) {
            (true, Some(client)) => OriginScope::Client(client),
            _ => OriginScope::AnyClient,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_client_limits_the_origins_checked() {
        let o = Some("https://app.example");
        let table = [
            (None, true, Some("spa"), OriginScope::Nobody),
            (Some("null"), false, None, OriginScope::Nobody),
            (Some(""), true, None, OriginScope::Nobody),
            (o, true, Some("spa"), OriginScope::Client("spa")),
            (o, true, None, OriginScope::AnyClient),
            (o, false, None, OriginScope::AnyClient),
            (o, false, Some("ignored"), OriginScope::AnyClient),
        ];
        for (origin, names_clients, client, expected) in table {
            assert_eq!(
                origin_scope(origin, names_clients, client),
                expected,
                "{origin:?} {names_clients} {client:?}"
            );
        }
    }
}
