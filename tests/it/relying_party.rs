//! Helpers for the real relying parties of the OpenID Connect tests: a seeded oauthd, a
//! free loopback port, and a child process killed when dropped.

use std::net::TcpListener;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::support::{assert_success, Oauthd};

pub const EMAIL: &str = "ann@example.com";
pub const PASSWORD: &str = "correct horse battery staple";

/// A user "Ann" who is an admin of the organization `acme`.
pub fn seed_user(o: &Oauthd) {
    let out = o.cli_stdin(
        &["user", "add", EMAIL, "--name", "Ann", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert_success(&out, &["user", "add"]);
    o.ok(&["org", "add", "acme"]);
    o.ok(&["org", "member", "add", "acme", EMAIL, "--role", "admin"]);
}

/// A port that was free a moment ago (for programs that cannot report the one they bound).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Fails the test with a clear message when `path` is not installed.
pub fn require(path: &str, package: &str) {
    assert!(
        std::path::Path::new(path).exists(),
        "{path} is missing: apt-get install {package} (.ci/run installs it)"
    );
}

/// A child process that is killed and reaped when the test ends, however it ends.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until something accepts connections on `port` (60 s at most).
pub fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before listening: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {port} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
