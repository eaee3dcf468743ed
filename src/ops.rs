//! What the binary prints about itself, without a database: shell completions
//! (`clap_complete`), the man page (`clap_mangen`), and the systemd unit kept in the
//! repository as `packaging/oauthd.service` (embedded, so the two never differ).

use std::io::Write;

use clap::CommandFactory;

use crate::cli::Cli;

/// The unit `oauthd systemd-unit` prints.
pub const SYSTEMD_UNIT: &str = include_str!("../packaging/oauthd.service");

/// Prints completions for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> std::io::Result<()> {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "oauthd", &mut out);
    write_stdout(&out)
}

/// Prints the man page (roff) on stdout.
pub fn man() -> std::io::Result<()> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    write_stdout(&out)
}

/// Prints the systemd unit on stdout.
pub fn systemd_unit() -> std::io::Result<()> {
    write_stdout(SYSTEMD_UNIT.as_bytes())
}

fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()
}
