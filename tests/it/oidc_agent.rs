//! A second real OpenID Connect app nobody here wrote: Debian's oidc-agent (the
//! `oidc-agent-cli` package). `oidc-gen` registers an account with oauthd through the
//! device flow (the user code is approved on `/device` over plain HTTP), then
//! `oidc-token` hands out access tokens (the second one by a refresh) that oauthd's
//! UserInfo accepts. The commands are the README's recipe.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::device_flow::answer_as;
use crate::flow_support::get_bearer;
use crate::relying_party::{require, seed_user, KillOnDrop, EMAIL, PASSWORD};
use crate::support::{Oauthd, Server};

const DEADLINE: Duration = Duration::from_secs(60);
/// The account's short name in oidc-agent.
const ACCOUNT: &str = "oauthd";

/// oidc-agent's commands with their state (config dir, socket, temp files) in `dir`.
struct Agent<'a> {
    dir: &'a Path,
}

impl Agent<'_> {
    fn socket(&self) -> std::path::PathBuf {
        self.dir.join("agent.sock")
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env_remove("OIDCD_PID")
            .env("HOME", self.dir)
            .env("TMPDIR", self.dir)
            .env("OIDC_CONFIG_DIR", self.dir.join("oidc-agent"))
            .env("OIDC_SOCK", self.socket())
            .stdin(Stdio::null());
        command
    }
}

/// Stops the agent the way its manual says (`oidc-agent --kill`), then kills it anyway.
struct AgentProcess<'a> {
    agent: &'a Agent<'a>,
    child: KillOnDrop,
}

impl Drop for AgentProcess<'_> {
    fn drop(&mut self) {
        let _ = self
            .agent
            .command("/usr/bin/oidc-agent")
            .env("OIDCD_PID", self.child.0.id().to_string())
            .arg("--kill")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Calls `check` every 100 ms until it answers, for 60 s at most; `what` names the
/// awaited event in the failure, with the last text `check` reported.
fn poll<T>(what: &str, mut check: impl FnMut(&mut String) -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    let mut seen = String::new();
    loop {
        if let Some(done) = check(&mut seen) {
            return done;
        }
        assert!(Instant::now() < deadline, "{what} within 60 s:\n{seen}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `command` to completion (60 s at most), capturing its output.
fn run(mut command: Command, what: &str) -> Output {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    rx.recv_timeout(DEADLINE)
        .unwrap_or_else(|_| panic!("{what} did not exit within 60 s"))
        .expect("wait")
}

/// Waits until `path` holds the user code oidc-gen prints ("enter the code: XXXX-XXXX").
fn user_code(path: &Path, gen: &mut Child) -> String {
    poll("oidc-gen printed no user code", |seen| {
        *seen = std::fs::read_to_string(path).unwrap_or_default();
        if let Ok(Some(status)) = gen.try_wait() {
            panic!("oidc-gen exited ({status}) before printing a user code:\n{seen}");
        }
        seen.split_once("enter the code: ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .map(str::to_owned)
    })
}

fn access_token(agent: &Agent, extra: &[&str]) -> String {
    let mut command = agent.command("/usr/bin/oidc-token");
    command.args(extra).arg(ACCOUNT);
    let out = run(command, "oidc-token");
    assert!(
        out.status.success(),
        "oidc-token {extra:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

fn assert_userinfo(server: &Server, token: &str, sub: &serde_json::Value) {
    let info = get_bearer(server, "/oauth/userinfo", token);
    assert_eq!(info.status, 200, "{}", info.body);
    let info = info.json();
    assert_eq!(info["email"], EMAIL, "{info}");
    assert_eq!(info["email_verified"], true, "{info}");
    assert_eq!(info["name"], "Ann", "{info}");
    assert_eq!(&info["sub"], sub, "{info}");
}

#[test]
fn oidc_agent_gets_tokens_from_oauthd_by_the_device_flow() {
    for program in ["oidc-agent", "oidc-gen", "oidc-token"] {
        require(&format!("/usr/bin/{program}"), "oidc-agent-cli");
    }
    let o = Oauthd::new();
    seed_user(&o);
    let secret = o.json(&[
        "client",
        "add",
        "--name",
        "oidc-agent",
        "--id",
        "oidc-agent",
        "--grant",
        "device_code",
        "--grant",
        "refresh_token",
        // oidc-agent adds `offline_access` to every request (it wants a refresh token).
        "--scope",
        "openid email profile offline_access",
    ])["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let sub = o.json(&["user", "show", EMAIL])["id"].clone();
    let server = o.serve(&["--device-interval", "1"]);
    let issuer = server.url("");

    let dir = tempfile::tempdir().expect("tempdir");
    let agent = Agent { dir: dir.path() };
    let child = agent
        .command("/usr/bin/oidc-agent")
        .arg("--console")
        .arg(format!("--socket-path={}", agent.socket().display()))
        .stdout(Stdio::null())
        .spawn()
        .expect("start oidc-agent");
    let _agent = AgentProcess {
        agent: &agent,
        child: KillOnDrop(child),
    };
    poll("oidc-agent made no socket", |_| {
        agent.socket().exists().then_some(())
    });

    let gen_out = dir.path().join("oidc-gen.out");
    let gen_err = dir.path().join("oidc-gen.err");
    let gen = agent
        .command("/usr/bin/oidc-gen")
        .args([
            "--flow=device",
            &format!("--iss={issuer}"),
            "--client-id=oidc-agent",
            &format!("--client-secret={secret}"),
            "--scope=openid email profile",
            "--no-url-call",
            "--prompt=none",
            "--confirm-default",
            "--pw-env",
            ACCOUNT,
        ])
        .env("OIDC_ENCRYPTION_PW", "a passphrase for the account file")
        .stdout(std::fs::File::create(&gen_out).expect("out file"))
        .stderr(std::fs::File::create(&gen_err).expect("err file"))
        .spawn()
        .expect("start oidc-gen");
    let mut gen = KillOnDrop(gen);
    let code = user_code(&gen_err, &mut gen.0);
    let approved = answer_as(&server, &code, "approve", (EMAIL, PASSWORD));
    assert_eq!(approved.status, 200, "{}", approved.body);
    let status = poll("oidc-gen did not exit", |_| {
        gen.0.try_wait().expect("try_wait")
    });
    let printed = std::fs::read_to_string(&gen_out).unwrap_or_default()
        + &std::fs::read_to_string(&gen_err).unwrap_or_default();
    assert!(status.success(), "oidc-gen: {status}\n{printed}");
    assert!(
        dir.path().join("oidc-agent").join(ACCOUNT).exists(),
        "no account file:\n{printed}"
    );

    let first = access_token(&agent, &[]);
    assert_userinfo(&server, &first, &sub);
    // A new token on demand: oidc-agent uses its refresh token.
    let second = access_token(&agent, &["--force-new"]);
    assert_ne!(first, second);
    assert_userinfo(&server, &second, &sub);
}
