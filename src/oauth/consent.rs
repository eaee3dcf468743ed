//! Whether an authorization request must ask the user's consent: third-party clients
//! ask once per user and client, again when they request a scope beyond the stored
//! consent, when `prompt=consent` asks for it, or after the user revoked the app.

use super::Prompt;

/// What the authorization endpoint does about consent, once the user is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentDecision {
    /// Issue the code without asking.
    Skip,
    /// Show the consent screen.
    Ask,
    /// `prompt=none` and consent is needed: redirect with `consent_required`.
    ConsentRequired,
}

/// The decision for a client (`first_party`), the user's stored consent for it (its
/// scope; `Some("")` is a consent to no scope in particular) and the requested scope.
pub fn decide_consent(
    first_party: bool,
    stored: Option<&str>,
    requested: Option<&str>,
    prompt: Prompt,
) -> ConsentDecision {
    if first_party {
        return ConsentDecision::Skip;
    }
    let covered = stored.is_some_and(|stored| {
        let granted: Vec<&str> = stored.split_whitespace().collect();
        requested
            .unwrap_or_default()
            .split_whitespace()
            .all(|name| granted.contains(&name))
    });
    match (covered && !prompt.consent, prompt.none) {
        (true, _) => ConsentDecision::Skip,
        (false, true) => ConsentDecision::ConsentRequired,
        (false, false) => ConsentDecision::Ask,
    }
}

/// The scope to store after the user allowed `requested`: the stored names and the
/// requested ones, each once, so a narrower later request does not forget a wider consent.
pub fn consented_scope(stored: Option<&str>, requested: Option<&str>) -> String {
    let mut names: Vec<&str> = Vec::new();
    for name in [stored, requested]
        .into_iter()
        .flatten()
        .flat_map(str::split_whitespace)
    {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_over_client_kind_stored_consent_scopes_and_prompt() {
        use ConsentDecision::*;
        let plain = Prompt::default();
        let none = Prompt {
            none: true,
            ..Prompt::default()
        };
        let consent = Prompt {
            consent: true,
            ..Prompt::default()
        };
        type Row = (
            bool,
            Option<&'static str>,
            Option<&'static str>,
            Prompt,
            ConsentDecision,
        );
        #[rustfmt::skip]
        let table: &[Row] = &[
            // first   stored            requested          prompt   decision
            (true,  None,               Some("openid"),     plain,   Skip),
            (true,  None,               Some("openid"),     none,    Skip),
            (true,  None,               None,               consent, Skip),
            (false, None,               None,               plain,   Ask),
            (false, None,               Some("openid"),     plain,   Ask),
            (false, None,               Some("openid"),     none,    ConsentRequired),
            (false, Some(""),           None,               plain,   Skip),
            (false, Some(""),           Some("openid"),     plain,   Ask),
            (false, Some("openid"),     Some("openid"),     plain,   Skip),
            (false, Some("openid"),     None,               plain,   Skip),
            (false, Some("openid"),     Some("openid"),     none,    Skip),
            (false, Some("openid"),     Some("openid"),     consent, Ask),
            (false, Some("openid email"), Some("email"),    plain,   Skip),
            (false, Some("openid"),     Some("openid email"), plain, Ask),
            (false, Some("openid"),     Some("openid email"), none,  ConsentRequired),
            (false, Some("openid"),     Some("  "),         plain,   Skip),
        ];
        for (n, (first_party, stored, requested, prompt, expected)) in table.iter().enumerate() {
            assert_eq!(
                decide_consent(*first_party, *stored, *requested, *prompt),
                *expected,
                "row {n}: {first_party} {stored:?} {requested:?} {prompt:?}"
            );
        }
    }

    #[test]
    fn the_stored_scope_grows_and_never_shrinks() {
        for (stored, requested, expected) in [
            (None, None, ""),
            (None, Some("openid"), "openid"),
            (Some("openid"), Some("email openid"), "openid email"),
            (Some("openid email"), Some("email"), "openid email"),
            (Some(""), Some(" a  a "), "a"),
        ] {
            assert_eq!(consented_scope(stored, requested), expected);
        }
    }
}
