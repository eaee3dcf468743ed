//! Real-browser plumbing: starts Debian's `chromedriver` on a port the OS picks, opens a
//! headless Chromium session over WebDriver (fantoccini, plain HTTP — no TLS stack), and
//! offers explicit waits that poll every 100 ms up to a 20 s deadline. It knows nothing of
//! oauthd's pages; the scenarios live in `browser.rs`.
//!
//! When the browser or its driver cannot start, a test run with `CI` set fails (CI must
//! run the browser tests; `.ci/run` installs Chromium), and a local run prints
//! `skipped: <reason>` on stderr and lets the test return.

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long any wait may take before the test fails, and how often it looks.
pub const DEADLINE: Duration = Duration::from_secs(20);
pub const POLL: Duration = Duration::from_millis(100);

/// Session creation starts Chromium, which on a busy 2-core CI machine can be slow.
const SESSION_DEADLINE: Duration = Duration::from_secs(60);

/// A headless Chromium session and the chromedriver serving it. Dropping it kills the
/// driver's whole process group (Chromium included); [`Browser::quit`] closes the
/// session politely first.
pub struct Browser {
    pub client: Client,
    label: String,
    _driver: Driver,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts a browser whose DNS maps each of `hosts` to 127.0.0.1. `label` names the
    /// failure screenshot. `None` means "skipped" (never in CI, where this panics).
    pub async fn start(label: &str, hosts: &[&str]) -> Option<Browser> {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            if !is_executable(Path::new(binary)) {
                return unavailable(format!(
                    "{binary} is missing (apt-get install chromium chromium-driver, or run .ci/run)"
                ));
            }
        }
        let driver = match Driver::start() {
            Ok(driver) => driver,
            Err(reason) => return unavailable(reason),
        };
        let profile = tempfile::tempdir().expect("profile tempdir");
        let capabilities = capabilities(profile.path(), hosts);
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities);
        let connected =
            tokio::time::timeout(SESSION_DEADLINE, builder.connect(&driver.url())).await;
        let client = match connected {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => return unavailable(format!("Chromium session did not start: {e}")),
            Err(_) => {
                return unavailable(format!(
                    "Chromium session did not start within {SESSION_DEADLINE:?}"
                ))
            }
        };
        Some(Browser {
            client,
            label: label.to_owned(),
            _driver: driver,
            _profile: profile,
        })
    }

    /// Closes the WebDriver session (Chromium exits), then the driver is killed on drop.
    pub async fn quit(self) {
        let _ = self.client.clone().close().await;
    }

    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("navigate to {url}: {e}"));
    }

    /// Waits until `css` matches an element whose visible text is not empty; returns it.
    pub async fn text(&self, css: &str) -> String {
        let client = &self.client;
        self.wait_for(&format!("non-empty text of {css}"), || async move {
            let text = client
                .find(Locator::Css(css))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            (!text.trim().is_empty()).then_some(text)
        })
        .await
    }

    /// Waits until `css` matches an element and returns its DOM property `name`
    /// (e.g. `value`, `src`) as text.
    pub async fn prop(&self, css: &str, name: &str) -> String {
        let client = &self.client;
        self.wait_for(&format!("property {name} of {css}"), || async move {
            client
                .find(Locator::Css(css))
                .await
                .ok()?
                .prop(name)
                .await
                .ok()?
        })
        .await
    }

    /// Waits until `script` (a function body run in the page) returns something other
    /// than null or false; returns that value.
    pub async fn js(&self, what: &str, script: &str) -> serde_json::Value {
        let client = &self.client;
        self.wait_for(what, || async move {
            let value = client.execute(script, Vec::new()).await.ok()?;
            (!value.is_null() && value != serde_json::Value::Bool(false)).then_some(value)
        })
        .await
    }

    /// Types `keys` into the element matching `css` once it exists.
    pub async fn type_into(&self, css: &str, keys: &str) {
        let client = &self.client;
        let element = self
            .wait_for(&format!("element {css}"), || async move {
                client.find(Locator::Css(css)).await.ok()
            })
            .await;
        element
            .send_keys(keys)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Clicks the element matching `css` once it exists.
    pub async fn click(&self, css: &str) {
        let client = &self.client;
        let element = self
            .wait_for(&format!("element {css}"), || async move {
                client.find(Locator::Css(css)).await.ok()
            })
            .await;
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Waits until the page's URL starts with `prefix`; returns the whole URL.
    pub async fn url_starting_with(&self, prefix: &str) -> url::Url {
        let client = &self.client;
        self.wait_for(&format!("a URL starting with {prefix}"), || async move {
            let url = client.current_url().await.ok()?;
            url.as_str().starts_with(prefix).then_some(url)
        })
        .await
    }

    pub async fn current_url(&self) -> url::Url {
        self.client.current_url().await.expect("current URL")
    }

    /// Runs the Chrome DevTools Protocol command `cmd` through chromedriver's
    /// `goog/cdp/execute` endpoint (WebDriver has no colour-scheme or device emulation).
    pub async fn cdp(&self, cmd: &str, params: serde_json::Value) {
        let command = Cdp {
            cmd: cmd.to_owned(),
            params,
        };
        self.client
            .issue_cmd(command)
            .await
            .unwrap_or_else(|e| panic!("CDP {cmd}: {e}"));
    }

    /// Makes the page `width`×`height` CSS pixels (as a phone when `mobile`), in the dark
    /// or light colour scheme; the page re-lays itself out without a reload.
    pub async fn emulate(&self, width: u32, height: u32, mobile: bool, dark: bool) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            serde_json::json!({
                "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile,
            }),
        )
        .await;
        let scheme = if dark { "dark" } else { "light" };
        self.cdp(
            "Emulation.setEmulatedMedia",
            serde_json::json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]}),
        )
        .await;
    }

    /// Saves a PNG screenshot of the viewport to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Polls `probe` every [`POLL`] until it yields a value or [`DEADLINE`] passes; on
    /// timeout, saves a screenshot and fails with the page's URL and source.
    pub async fn wait_for<T, F, Fut>(&self, what: &str, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(value) = probe().await {
                return value;
            }
            if Instant::now() >= deadline {
                self.fail(&format!("timed out after {DEADLINE:?} waiting for {what}"))
                    .await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Fails the test with what the browser shows, keeping a screenshot for a human.
    pub async fn fail(&self, message: &str) -> ! {
        let shot = target_dir().join(format!("browser-failure-{}.png", self.label));
        let saved = match self.client.screenshot().await {
            Ok(png) => std::fs::write(&shot, png)
                .map(|()| shot.display().to_string())
                .unwrap_or_else(|e| e.to_string()),
            Err(e) => format!("no screenshot: {e}"),
        };
        let url = self
            .client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_else(|e| e.to_string());
        let source = self.client.source().await.unwrap_or_else(|e| e.to_string());
        let source: String = source.chars().take(3000).collect();
        panic!(
            "{message}\nbrowser URL: {url}\nscreenshot: {saved}\npage source (start):\n{source}"
        );
    }
}

/// One CDP command for chromedriver's `POST /session/{id}/goog/cdp/execute`.
#[derive(Debug)]
struct Cdp {
    cmd: String,
    params: serde_json::Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session_id.unwrap_or_default();
        base_url.join(&format!("session/{session}/goog/cdp/execute"))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (hyper::Method, Option<String>) {
        let body = serde_json::json!({"cmd": self.cmd, "params": self.params});
        (hyper::Method::POST, Some(body.to_string()))
    }
}

/// The cargo target directory (screenshots go there, beside the build).
pub fn target_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).to_path_buf()
}

/// Whether a missing browser must fail the test: `CI` set (to anything but empty,
/// `0` or `false`).
fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| !matches!(v.trim(), "" | "0" | "false"))
        .unwrap_or(false)
}

fn unavailable(reason: String) -> Option<Browser> {
    assert!(
        !in_ci(),
        "browser test cannot run, and CI must run it: {reason}"
    );
    eprintln!("skipped: {reason}");
    None
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Chromium as the machine's closed network needs it: no background connections (they
/// would be refused, many at a time), no GPU, no sandbox (CI runs as root), a fresh
/// profile, and a phone-sized window since the sign-in page is shown in phone apps.
fn capabilities(profile: &Path, hosts: &[&str]) -> serde_json::Map<String, serde_json::Value> {
    let rules: Vec<String> = hosts
        .iter()
        .map(|host| format!("MAP {host} 127.0.0.1"))
        .collect();
    let args = vec![
        "--headless=new".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--disable-quic".to_owned(),
        "--no-first-run".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--window-size=412,915".to_owned(),
        format!("--user-data-dir={}", profile.display()),
        format!("--host-resolver-rules={}", rules.join(", ")),
    ];
    let value = serde_json::json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
    });
    match value {
        serde_json::Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}

/// A running chromedriver, in its own process group so that dropping it also ends the
/// Chromium processes it started, even when a test panics before closing the session.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    /// `--port=0` lets the OS pick a free port, which chromedriver then reports on stdout
    /// ("… started successfully on port N."): no port probing, no race.
    fn start() -> Result<Driver, String> {
        let mut child = Command::new(CHROMEDRIVER)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {CHROMEDRIVER}: {e}"))?;
        let stdout = child.stdout.take().expect("chromedriver stdout");
        let (lines, received) = mpsc::channel();
        // Reads every line for as long as the driver lives, so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let deadline = Instant::now() + DEADLINE;
        let mut seen = Vec::new();
        let port = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match received.recv_timeout(left) {
                Ok(line) => {
                    if let Some(port) = reported_port(&line) {
                        break port;
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let mut driver = Driver { child, port: 0 };
                    driver.kill();
                    return Err(format!(
                        "chromedriver reported no port within {DEADLINE:?}; it said: {seen:?}"
                    ));
                }
            }
        };
        let driver = Driver { child, port };
        driver.wait_ready()?;
        Ok(driver)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Polls `GET /status` until the driver says it is ready.
    fn wait_ready(&self) -> Result<(), String> {
        let agent = crate::support::agent();
        let deadline = Instant::now() + DEADLINE;
        loop {
            let ready = agent
                .get(&format!("{}/status", self.url()))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_json::<serde_json::Value>().ok())
                .is_some_and(|status| status["value"]["ready"] == true);
            if ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "chromedriver on port {} not ready within {DEADLINE:?}",
                    self.port
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    fn kill(&mut self) {
        // SAFETY: kill(2) on the process group this test created (pgid = the driver's
        // pid); it holds only chromedriver and the Chromium it started.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.kill();
    }
}

fn reported_port(line: &str) -> Option<u16> {
    let rest = line.split("started successfully on port ").nth(1)?;
    rest.trim().trim_end_matches('.').parse().ok()
}
