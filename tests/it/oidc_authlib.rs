//! An OpenID Connect client library nobody here wrote: Authlib (Debian's python3-authlib)
//! runs `authlib_client.py` against a live oauthd — discovery, the code flow with PKCE and
//! a nonce, the RFC 9207 `iss` check, id_token validation with the JWKS, UserInfo, and
//! RP-initiated logout with the id_token as hint (an altered hint refused).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::relying_party::{require, seed_user, EMAIL, PASSWORD};
use crate::support::Oauthd;

pub const PYTHON: &str = "/usr/bin/python3";
const REDIRECT: &str = "http://127.0.0.1:9/callback";
const LOGGED_OUT: &str = "http://127.0.0.1:9/logged-out";

#[test]
fn authlib_validates_id_tokens_of_each_algorithm_reads_userinfo_and_logs_out() {
    require(PYTHON, "python3");
    let o = Oauthd::new();
    seed_user(&o);
    let mut clients = Vec::new();
    for alg in ["RS256", "ES256"] {
        let id = format!("authlib-{}", alg.to_lowercase());
        let v = o.json(&[
            "client",
            "add",
            "--name",
            "Authlib",
            "--id",
            &id,
            "--redirect-uri",
            REDIRECT,
            "--require-pkce",
            "--id-token-alg",
            alg,
            "--post-logout-redirect-uri",
            LOGGED_OUT,
        ]);
        clients.push((
            alg,
            id,
            v["client_secret"].as_str().expect("secret").to_owned(),
        ));
    }
    let server = o.serve(&[]);
    let issuer = format!("http://{}", server.addr);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/authlib_client.py");
    for (alg, id, secret) in clients {
        let result = run_python(&[
            script, &issuer, &id, &secret, REDIRECT, EMAIL, PASSWORD, LOGGED_OUT,
        ]);
        assert_eq!(result["validated"], true, "{result}");
        assert_eq!(result["logged_out"], true, "{result}");
        assert_eq!(result["alg"], alg, "{result}");
        let claims = &result["id_token"];
        assert_eq!(claims["iss"], issuer.as_str());
        assert_eq!(claims["aud"], id.as_str());
        assert_eq!(claims["email"], EMAIL);
        assert_eq!(claims["name"], "Ann");
        assert_eq!(result["userinfo"]["email"], EMAIL);
        assert_eq!(
            result["userinfo"]["groups"],
            serde_json::json!(["acme", "acme:admin"])
        );
    }
}

/// Runs the script (60 s at most) and parses the JSON it prints.
pub fn run_python(args: &[&str]) -> serde_json::Value {
    let mut child = Command::new(PYTHON)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python3");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the Authlib client did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("read");
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read");
    assert!(
        status.success(),
        "the Authlib client failed ({status}); is python3-authlib installed?\n{stderr}"
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}
