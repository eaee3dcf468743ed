//! systemd's readiness and watchdog protocol (`sd_notify`, `Type=notify`): one datagram
//! such as `READY=1` to the Unix socket named by `NOTIFY_SOCKET` (a path, or `@name` in
//! the abstract namespace). Without `NOTIFY_SOCKET` (not under systemd) nothing is sent.
//! The watchdog ping comes from a task on the server's runtime, so a runtime that stops
//! scheduling stops pinging and systemd restarts the service.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Tells systemd the server is ready, then pings its watchdog at half the interval
/// systemd asked for (`WATCHDOG_USEC`), for as long as the runtime runs.
pub async fn ready_then_watchdog() {
    let Some(notifier) = Notifier::from_env() else {
        return;
    };
    notifier.send("READY=1\nSTATUS=serving");
    let Some(interval) = watchdog_interval() else {
        return;
    };
    let mut ticker = tokio::time::interval(interval);
    loop {
        ticker.tick().await;
        notifier.send("WATCHDOG=1");
    }
}

struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
}

impl Notifier {
    fn from_env() -> Option<Notifier> {
        let name = std::env::var_os("NOTIFY_SOCKET")?;
        let addr = socket_addr(name.as_encoded_bytes())?;
        let socket = UnixDatagram::unbound().ok()?;
        // Never block the runtime on a full socket queue: a lost ping is the lesser evil.
        socket.set_nonblocking(true).ok()?;
        Some(Notifier { socket, addr })
    }

    fn send(&self, state: &str) {
        if let Err(e) = self.socket.send_to_addr(state.as_bytes(), &self.addr) {
            tracing::warn!("cannot notify systemd ({state:?}): {e}");
        }
    }
}

/// The address `NOTIFY_SOCKET` names: `@name` is abstract, else a filesystem path.
fn socket_addr(name: &[u8]) -> Option<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    match name.split_first() {
        Some((b'@', abstract_name)) => SocketAddr::from_abstract_name(abstract_name).ok(),
        Some((b'/', _)) => SocketAddr::from_pathname(std::ffi::OsStr::from_bytes(name)).ok(),
        _ => None,
    }
}

/// Half of `WATCHDOG_USEC` when the watchdog is on and meant for this process
/// (`WATCHDOG_PID`, when set, is ours).
fn watchdog_interval() -> Option<Duration> {
    if let Some(pid) = std::env::var_os("WATCHDOG_PID") {
        if pid.to_str()?.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_socket_names_a_path_or_an_abstract_socket() {
        let path = socket_addr(b"/run/systemd/notify").expect("path");
        assert_eq!(
            path.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        use std::os::linux::net::SocketAddrExt;
        let abstract_addr = socket_addr(b"@notify/1").expect("abstract");
        assert_eq!(abstract_addr.as_abstract_name(), Some(&b"notify/1"[..]));
        assert!(socket_addr(b"").is_none());
        assert!(socket_addr(b"relative/path").is_none());
    }
}
