//! `client add --preset`: the redirect URIs a platform's account linking uses, and the
//! values to paste into its console. Pure functions over the ids given, table-tested.

use crate::cli::Preset;

/// Where the printed values point when no issuer is known (`--issuer`, `OAUTHD_ISSUER`).
pub const PLACEHOLDER_ISSUER: &str = "https://YOUR-OAUTHD-HOST";

/// The redirect URIs the platform sends users back to, for its vendor or project `id`.
pub fn redirect_uris(preset: Preset, id: &str) -> Vec<String> {
    match preset {
        // One per Alexa region: North America, Europe and India, Far East.
        Preset::Alexa => [
            "pitangui.amazon.com",
            "layla.amazon.com",
            "alexa.amazon.co.jp",
        ]
        .iter()
        .map(|host| format!("https://{host}/api/skill/link/{id}"))
        .collect(),
        Preset::GoogleHome => [
            "oauth-redirect.googleusercontent.com",
            "oauth-redirect-sandbox.googleusercontent.com",
        ]
        .iter()
        .map(|host| format!("https://{host}/r/{id}"))
        .collect(),
    }
}

/// `(console field, value)` pairs to paste into the platform's account-linking form.
pub fn console_values(
    preset: Preset,
    issuer: &str,
    client_id: &str,
) -> Vec<(&'static str, String)> {
    let authorize = format!("{issuer}/oauth/authorize");
    match preset {
        Preset::Alexa => vec![
            ("Authorization URI", authorize),
            (
                "Access Token URI",
                format!("{issuer}/api/oauth_access_token"),
            ),
            ("Your Client ID", client_id.to_owned()),
            ("Your Secret", "the client_secret above".to_owned()),
            (
                "Your Authentication Scheme",
                "HTTP Basic (Recommended)".to_owned(),
            ),
            ("Scope", "one your skill uses, e.g. read".to_owned()),
        ],
        Preset::GoogleHome => vec![
            ("Client ID", client_id.to_owned()),
            ("Client secret", "the client_secret above".to_owned()),
            ("Authorization URL", authorize),
            ("Token URL", format!("{issuer}/oauth/token")),
        ],
    }
}

/// The platform's name, for the printed heading.
pub fn console_name(preset: Preset) -> &'static str {
    match preset {
        Preset::Alexa => "Alexa developer console (Build > Account Linking)",
        Preset::GoogleHome => "Google Home Developer Console (Account linking, OAuth)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_preset_registers_its_platform_redirect_uris() {
        let cases: [(Preset, &str, &[&str]); 2] = [
            (
                Preset::Alexa,
                "M2ABC",
                &[
                    "https://pitangui.amazon.com/api/skill/link/M2ABC",
                    "https://layla.amazon.com/api/skill/link/M2ABC",
                    "https://alexa.amazon.co.jp/api/skill/link/M2ABC",
                ],
            ),
            (
                Preset::GoogleHome,
                "my-project",
                &[
                    "https://oauth-redirect.googleusercontent.com/r/my-project",
                    "https://oauth-redirect-sandbox.googleusercontent.com/r/my-project",
                ],
            ),
        ];
        for (preset, id, expected) in cases {
            assert_eq!(redirect_uris(preset, id), expected, "{preset:?}");
        }
    }

    #[test]
    fn console_values_point_at_this_server() {
        let alexa = console_values(Preset::Alexa, "https://auth.example.com", "skill");
        assert!(alexa.contains(&(
            "Authorization URI",
            "https://auth.example.com/oauth/authorize".into()
        )));
        assert!(alexa.contains(&(
            "Access Token URI",
            "https://auth.example.com/api/oauth_access_token".into()
        )));
        assert!(alexa.contains(&("Your Client ID", "skill".into())));
        let google = console_values(Preset::GoogleHome, "https://a.example", "g");
        assert!(google.contains(&("Token URL", "https://a.example/oauth/token".into())));
    }
}
