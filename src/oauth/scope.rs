//! Scopes (RFC 6749 §3.3): space-separated names. oauthd records and echoes them; the one
//! rule it enforces is that a refresh may narrow a grant's scope but never widen it (§6).

/// A requested scope as sent (space-separated names), typed so it cannot be confused
/// with the other strings of a request on its way from the endpoint to the rule book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope(String);

impl Scope {
    pub fn new(value: impl Into<String>) -> Scope {
        Scope(value.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Scope {
    fn from(value: &str) -> Scope {
        Scope::new(value)
    }
}

/// The requested scope names one the grant does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeExceeded;

/// The scope of a token issued by refresh: the grant's own when none is requested,
/// otherwise the requested names (each once, in the order asked), all of which the grant
/// must hold.
pub fn narrow_scope(
    granted: Option<&str>,
    requested: Option<&Scope>,
) -> Result<Option<String>, ScopeExceeded> {
    let Some(requested) = requested else {
        return Ok(granted.map(str::to_owned));
    };
    let granted: Vec<&str> = granted.unwrap_or_default().split_whitespace().collect();
    let mut names: Vec<&str> = Vec::new();
    for name in requested.as_str().split_whitespace() {
        if !granted.contains(&name) {
            return Err(ScopeExceeded);
        }
        if !names.contains(&name) {
            names.push(name);
        }
    }
    // A request of only spaces asks for nothing in particular: the grant's scope.
    if names.is_empty() {
        return Ok((!granted.is_empty()).then(|| granted.join(" ")));
    }
    Ok(Some(names.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_scope_may_narrow_but_not_widen() {
        type Row = (
            Option<&'static str>,
            Option<&'static str>,
            Result<Option<&'static str>, ScopeExceeded>,
        );
        let table: &[Row] = &[
            (Some("read write"), None, Ok(Some("read write"))),
            (None, None, Ok(None)),
            (Some("read write"), Some("read"), Ok(Some("read"))),
            (
                Some("read write"),
                Some("write read"),
                Ok(Some("write read")),
            ),
            (Some("read write"), Some("read  read"), Ok(Some("read"))),
            (Some("read write"), Some("read admin"), Err(ScopeExceeded)),
            (Some("read"), Some("read write"), Err(ScopeExceeded)),
            (None, Some("read"), Err(ScopeExceeded)),
            (Some("read"), Some("  "), Ok(Some("read"))),
        ];
        for (granted, requested, expected) in table {
            assert_eq!(
                narrow_scope(*granted, requested.map(Scope::new).as_ref()),
                expected.map(|s| s.map(str::to_owned)),
                "granted {granted:?}, requested {requested:?}"
            );
        }
    }
}
