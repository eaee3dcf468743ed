//! What a grant type handled in its own module (client credentials, device code) hands
//! back to the token endpoint, which answers it like every other grant.

/// Tokens just issued and committed.
pub struct Issued {
    pub access: String,
    /// `None`: no refresh token (client credentials, or a client without that grant).
    pub refresh: Option<String>,
    pub scope: Option<String>,
    pub expires_in: i64,
    /// With `openid` in a user's grant (device code): the signed id_token.
    pub id_token: Option<String>,
}
