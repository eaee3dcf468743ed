//! Reading a new password for `user add` and `user passwd`: one line of stdin with
//! `--password-stdin`, else typed twice at a terminal. Nothing here prints or keeps the
//! password beyond returning it.

use std::io::{BufRead, IsTerminal};

use super::AdminError;

/// Longer lines are refused rather than silently cut: a truncated password would lock
/// its owner out.
const MAX_PASSWORD_BYTES: u64 = 4096;

/// The new password: one line of stdin with `--password-stdin`, else typed twice at a
/// terminal. Refuses a non-terminal stdin without the flag, so a script never hangs on a
/// prompt nobody sees.
pub fn read_password(password_stdin: bool) -> Result<String, AdminError> {
    if password_stdin {
        return read_password_line(std::io::stdin().lock());
    }
    if !std::io::stdin().is_terminal() {
        return Err(AdminError::Invalid(
            "standard input is not a terminal; pass the password with --password-stdin".into(),
        ));
    }
    let prompt_error =
        |e: std::io::Error| AdminError::Invalid(format!("cannot read the password: {e}"));
    let first = rpassword::prompt_password("New password: ").map_err(prompt_error)?;
    let second = rpassword::prompt_password("Repeat password: ").map_err(prompt_error)?;
    if first != second {
        return Err(AdminError::Invalid(
            "the passwords do not match; nothing changed".into(),
        ));
    }
    non_empty(first)
}

/// One line; only its line ending (`\n` or `\r\n`) is removed, other whitespace is part of
/// the password.
fn read_password_line(input: impl BufRead) -> Result<String, AdminError> {
    let mut line = String::new();
    input
        .take(MAX_PASSWORD_BYTES + 1)
        .read_line(&mut line)
        .map_err(|e| {
            AdminError::Invalid(format!("cannot read the password from standard input: {e}"))
        })?;
    if line.len() as u64 > MAX_PASSWORD_BYTES {
        return Err(AdminError::Invalid(format!(
            "password longer than {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    let password = line
        .strip_suffix('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or(&line);
    non_empty(password.to_owned())
}

fn non_empty(password: String) -> Result<String, AdminError> {
    if password.is_empty() {
        return Err(AdminError::Invalid("the password must not be empty".into()));
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn password_line_loses_only_its_line_ending() {
        let read = |s: &str| read_password_line(Cursor::new(s.as_bytes().to_vec())).ok();
        assert_eq!(read("pw\n").as_deref(), Some("pw"));
        assert_eq!(read("pw\r\n").as_deref(), Some("pw"));
        assert_eq!(read(" p w \n").as_deref(), Some(" p w "));
        assert_eq!(read("pw").as_deref(), Some("pw"));
        assert_eq!(read("first\nsecond\n").as_deref(), Some("first"));
        assert_eq!(read("pw\r\r\n").as_deref(), Some("pw\r"));
    }

    #[test]
    fn password_line_refuses_empty_and_overlong() {
        let read = |s: &str| read_password_line(Cursor::new(s.as_bytes().to_vec())).is_err();
        assert!(read(""));
        assert!(read("\n"));
        assert!(read("\r\n"));
        assert!(read(&"x".repeat(5000)));
    }
}
