//! A real load balancer for tests: Debian's `nginx`, started by the test as the current
//! user (`daemon off`, one worker, so round-robin strictly alternates), with its config,
//! pid file, logs and temporary folders in a temporary folder, on a free loopback port.
//! Every answer carries `X-Upstream: ADDR` naming the instance that served it. Stopped
//! (SIGTERM to the master, which stops its worker; SIGKILL if it lingers) on drop.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::relying_party::{free_port, require, wait_for_port};

const NGINX: &str = "/usr/sbin/nginx";

/// A running nginx balancing round-robin over some upstreams.
pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// A port for [`Nginx::round_robin`], known before the upstreams start (they need
    /// the balancer's URL as their issuer).
    pub fn free_port() -> u16 {
        free_port()
    }

    /// Starts nginx on `port` in front of `upstreams` (plain HTTP), or fails the test
    /// saying why.
    pub fn round_robin(port: u16, upstreams: &[SocketAddr]) -> Nginx {
        require(NGINX, "nginx");
        let dir = tempfile::tempdir().expect("tempdir");
        let servers: String = upstreams
            .iter()
            .map(|addr| format!("        server {addr} max_fails=0;\n"))
            .collect();
        let d = dir.path().display();
        let config = format!(
            "worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream oauthd {{
{servers}    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://oauthd;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_next_upstream off;
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
"
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, config).expect("write nginx.conf");
        let mut child = Command::new(NGINX)
            .arg("-c")
            .arg(&path)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        wait_for_port(port, &mut child, "nginx");
        Nginx { child, dir }
    }

    /// nginx's error log so far (for failure messages).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
