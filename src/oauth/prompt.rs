//! Whether an authorization request is answered from the browser's session (single
//! sign-on) or shows the sign-in form: OpenID Connect's `prompt` and `max_age` over the
//! session's facts, the idle timeout and the time. Also when a used session's `last_seen`
//! is worth writing, so the session path does not write on every request.

/// What the store knows of the browser's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionFacts {
    /// When the user last typed their password (the session's creation).
    pub auth_time: i64,
    pub last_seen: i64,
    pub expires_at: i64,
    pub user_disabled: bool,
}

/// The `prompt` values oauthd acts on. Others (`select_account`) are ignored, as
/// OpenID Connect Core §3.1.2.1 allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    /// Ask a third-party client's consent again even if stored (`oauth::consent`).
    pub consent: bool,
}

/// What the authorization endpoint does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Issue the code for the session's user, no form.
    UseSession,
    /// Show the sign-in form.
    ShowForm,
    /// `prompt=none` and no usable session: redirect with `login_required`.
    LoginRequired,
}

/// Parses `prompt` (space-separated). `none` with any other value is an
/// `invalid_request`, whose description this returns.
pub fn parse_prompt(raw: Option<&str>) -> Result<Prompt, &'static str> {
    let mut prompt = Prompt::default();
    let mut count = 0;
    for value in raw.unwrap_or_default().split_whitespace() {
        count += 1;
        match value {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            _ => {}
        }
    }
    if prompt.none && count > 1 {
        return Err("prompt=none cannot be combined with other prompt values");
    }
    Ok(prompt)
}

/// Parses `max_age`: seconds, a non-negative integer.
pub fn parse_max_age(raw: Option<&str>) -> Result<Option<i64>, &'static str> {
    const BAD: &str = "max_age must be a non-negative integer (seconds)";
    let Some(raw) = raw else {
        return Ok(None);
    };
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BAD);
    }
    // Longer than any i64: as good as "no limit", but keep it finite.
    Ok(Some(raw.parse().unwrap_or(i64::MAX)))
}

/// Whether the session still signs its user in: not expired, not idle for `idle_secs`,
/// and the user not disabled.
pub fn session_is_live(session: &SessionFacts, now: i64, idle_secs: i64) -> bool {
    !session.user_disabled
        && now < session.expires_at
        && now.saturating_sub(session.last_seen) < idle_secs
}

/// The decision for one authorization request. `max_age=0` asks for a fresh sign-in like
/// `prompt=login`; a larger one refuses a session whose sign-in is older than that.
pub fn decide(
    session: Option<&SessionFacts>,
    prompt: Prompt,
    max_age: Option<i64>,
    now: i64,
    idle_secs: i64,
) -> Decision {
    let fresh_enough = |s: &SessionFacts| match max_age {
        None => true,
        Some(0) => false,
        Some(max) => now.saturating_sub(s.auth_time) <= max,
    };
    let usable = session.is_some_and(|s| session_is_live(s, now, idle_secs) && fresh_enough(s));
    match (usable && !prompt.login, prompt.none) {
        (true, _) => Decision::UseSession,
        (false, true) => Decision::LoginRequired,
        (false, false) => Decision::ShowForm,
    }
}

/// Whether using the session now should record `last_seen`: only once the stored value
/// is older than a small fraction of the idle timeout (at most 5 minutes), so a busy
/// browser costs one write per interval, and the idle timeout errs by at most that.
pub fn needs_touch(session: &SessionFacts, now: i64, idle_secs: i64) -> bool {
    let interval = (idle_secs / 8).clamp(1, 300);
    now.saturating_sub(session.last_seen) >= interval
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000;
    const IDLE: i64 = 3600;

    fn session(auth_ago: i64, seen_ago: i64, expires_in: i64, disabled: bool) -> SessionFacts {
        SessionFacts {
            auth_time: NOW - auth_ago,
            last_seen: NOW - seen_ago,
            expires_at: NOW + expires_in,
            user_disabled: disabled,
        }
    }

    #[test]
    fn prompt_and_max_age_over_session_states() {
        use Decision::*;
        let live = Some(session(600, 10, 1000, false));
        let expired = Some(session(600, 10, 0, false));
        let idle = Some(session(7200, IDLE, 1000, false));
        let disabled = Some(session(600, 10, 1000, true));
        let none = Prompt {
            none: true,
            ..Prompt::default()
        };
        let login = Prompt {
            login: true,
            ..Prompt::default()
        };
        let plain = Prompt::default();
        #[rustfmt::skip]
        let table: &[(Option<SessionFacts>, Prompt, Option<i64>, Decision)] = &[
            // session   prompt  max_age     decision
            (None,       plain,  None,       ShowForm),
            (None,       none,   None,       LoginRequired),
            (None,       login,  None,       ShowForm),
            (None,       plain,  Some(60),   ShowForm),
            (live,       plain,  None,       UseSession),
            (live,       none,   None,       UseSession),
            (live,       login,  None,       ShowForm),
            (live,       plain,  Some(600),  UseSession),
            (live,       plain,  Some(599),  ShowForm),
            (live,       none,   Some(599),  LoginRequired),
            (live,       plain,  Some(0),    ShowForm),
            (live,       none,   Some(0),    LoginRequired),
            (live,       plain,  Some(i64::MAX), UseSession),
            (expired,    plain,  None,       ShowForm),
            (expired,    none,   None,       LoginRequired),
            (idle,       plain,  None,       ShowForm),
            (idle,       none,   None,       LoginRequired),
            (disabled,   plain,  None,       ShowForm),
            (disabled,   none,   None,       LoginRequired),
        ];
        for (n, (session, prompt, max_age, expected)) in table.iter().enumerate() {
            assert_eq!(
                decide(session.as_ref(), *prompt, *max_age, NOW, IDLE),
                *expected,
                "row {n}: {session:?} {prompt:?} {max_age:?}"
            );
        }
    }

    #[test]
    fn prompt_values_parse() {
        let ok = |none, login, consent| {
            Ok(Prompt {
                none,
                login,
                consent,
            })
        };
        for (raw, expected) in [
            (None, ok(false, false, false)),
            (Some(""), ok(false, false, false)),
            (Some("none"), ok(true, false, false)),
            (Some("login"), ok(false, true, false)),
            (Some("login consent"), ok(false, true, true)),
            (Some("consent"), ok(false, false, true)),
            (Some("select_account"), ok(false, false, false)),
            (Some("none login"), Err(())),
            (Some("none consent"), Err(())),
        ] {
            assert_eq!(parse_prompt(raw).map_err(|_| ()), expected, "{raw:?}");
        }
    }

    #[test]
    fn max_age_parses_non_negative_integers_only() {
        for (raw, expected) in [
            (None, Ok(None)),
            (Some("0"), Ok(Some(0))),
            (Some("3600"), Ok(Some(3600))),
            (Some("99999999999999999999999"), Ok(Some(i64::MAX))),
            (Some(""), Err(())),
            (Some("-1"), Err(())),
            (Some("1.5"), Err(())),
            (Some("+5"), Err(())),
            (Some("ten"), Err(())),
        ] {
            assert_eq!(parse_max_age(raw).map_err(|_| ()), expected, "{raw:?}");
        }
    }

    #[test]
    fn last_seen_is_written_coarsely() {
        #[rustfmt::skip]
        let table: &[(i64, i64, bool)] = &[
            // idle      seen_ago  touch
            (1200,       0,        false),
            (1200,       149,      false),
            (1200,       150,      true),
            (3600,       299,      false),
            (3600,       300,      true),
            (604_800,    299,      false),
            (604_800,    300,      true),
            (4,          1,        true),
        ];
        for (idle, seen_ago, expected) in table {
            let s = session(0, *seen_ago, 1000, false);
            assert_eq!(needs_touch(&s, NOW, *idle), *expected, "{idle} {seen_ago}");
        }
    }
}
