//! Where the database is, as `--db` / `OAUTHD_DB` names it: an SQLite file path, or a
//! `postgres://` URL. Shown (and logged) without the URL's password.

use std::fmt;
use std::path::{Path, PathBuf};

/// An SQLite file, or (feature `postgres`) a PostgreSQL database.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    File(PathBuf),
    #[cfg(feature = "postgres")]
    Postgres(String),
}

impl Location {
    /// `value` as a location: a `postgres://` or `postgresql://` URL (any letter case) is
    /// PostgreSQL, anything else a file path. Without the `postgres` feature a URL is
    /// refused plainly rather than taken for a file name.
    pub fn parse(value: &str) -> Result<Location, String> {
        let lower = value.get(..13).unwrap_or(value).to_ascii_lowercase();
        if !(lower.starts_with("postgres://") || lower.starts_with("postgresql://")) {
            return Ok(Location::File(PathBuf::from(value)));
        }
        #[cfg(feature = "postgres")]
        return Ok(Location::Postgres(value.to_owned()));
        #[cfg(not(feature = "postgres"))]
        Err(
            "this build has no PostgreSQL support (it was built without the `postgres` \
             feature); give an SQLite file path"
                .into(),
        )
    }

    /// The SQLite file, or `None` on PostgreSQL.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Location::File(path) => Some(path),
            #[cfg(feature = "postgres")]
            Location::Postgres(_) => None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(path) => path.display().fmt(f),
            #[cfg(feature = "postgres")]
            Location::Postgres(url) => f.write_str(&super::pg::redacted(url)),
        }
    }
}

/// As shown: a URL's password must not reach a log through `{:?}` either.
impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_a_file_and_a_url_is_postgres() {
        for path in [
            "oauthd.db",
            "/var/lib/oauthd/oauthd.db",
            "postgres",
            "postgres:/x",
        ] {
            assert_eq!(
                Location::parse(path),
                Ok(Location::File(path.into())),
                "{path}"
            );
        }
        for url in ["postgres://u@h/db", "PostgreSQL://h/db"] {
            let parsed = Location::parse(url);
            #[cfg(feature = "postgres")]
            assert_eq!(parsed, Ok(Location::Postgres(url.into())), "{url}");
            #[cfg(not(feature = "postgres"))]
            assert!(
                parsed.is_err_and(|e| e.contains("no PostgreSQL support")),
                "{url}"
            );
        }
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn a_password_is_never_shown() {
        let location = Location::parse("postgres://u:secret@h/db").expect("parse");
        assert!(!location.to_string().contains("secret"), "{location}");
        assert!(!format!("{location:?}").contains("secret"), "{location:?}");
        assert_eq!(location.file(), None);
    }
}
