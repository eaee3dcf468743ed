//! A real relying party nobody here wrote: Apache httpd with Debian's mod_auth_openidc
//! protects `/protected`. Headless Chromium opens a protected page, is sent to oauthd's
//! sign-in page, signs in, and lands on the page, which shows (through mod_include) the
//! claims Apache passes on. The configuration is the README's recipe.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use crate::relying_party::{
    free_port, require, seed_user, wait_for_port, KillOnDrop, EMAIL, PASSWORD,
};
use crate::support::Oauthd;
use crate::webdriver::{target_dir, Browser};

const APACHE: &str = "/usr/sbin/apache2";
const MODULES: &str = "/usr/lib/apache2/modules";

/// The page behind the login: what mod_auth_openidc put in the environment.
const CLAIMS_PAGE: &str = r#"<html><body>
<p id="user"><!--#echo var="REMOTE_USER" --></p>
<p id="email"><!--#echo var="OIDC_CLAIM_email" --></p>
<p id="name"><!--#echo var="OIDC_CLAIM_name" --></p>
<p id="groups"><!--#echo var="OIDC_CLAIM_groups" --></p>
</body></html>
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apache_mod_auth_openidc_signs_in_through_oauthd() {
    require(APACHE, "apache2");
    require(
        &format!("{MODULES}/mod_auth_openidc.so"),
        "libapache2-mod-auth-openidc",
    );
    let o = Oauthd::new();
    seed_user(&o);
    let port = free_port();
    let app = format!("http://127.0.0.1:{port}");
    let secret = o.json(&[
        "client",
        "add",
        "--name",
        "Apache",
        "--id",
        "apache",
        "--redirect-uri",
        &format!("{app}/protected/redirect_uri"),
        "--scope",
        "openid email profile groups",
    ])["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let server = o.serve(&[]);
    let issuer = format!("http://{}", server.addr);

    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("htdocs/protected")).expect("htdocs");
    std::fs::write(root.join("htdocs/protected/claims.shtml"), CLAIMS_PAGE).expect("page");
    // Apache's worker runs as nobody: it must read the document root.
    for path in [root, &root.join("htdocs"), &root.join("htdocs/protected")] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let conf = root.join("httpd.conf");
    std::fs::write(&conf, apache_conf(root, port, &issuer, &secret)).expect("conf");

    let mut child = Command::new(APACHE)
        .args(["-X", "-f"])
        .arg(&conf)
        .stdin(Stdio::null())
        .spawn()
        .expect("start apache2");
    wait_for_port(port, &mut child, "apache2");
    let _apache = KillOnDrop(child);

    let Some(browser) = Browser::start("apache-oidc", &[]).await else {
        return;
    };
    browser.goto(&format!("{app}/protected/claims.shtml")).await;
    browser
        .url_starting_with(&format!("{issuer}/oauth/authorize"))
        .await;
    browser.type_into("input[name=email]", EMAIL).await;
    browser.type_into("input[name=password]", PASSWORD).await;
    browser.click("button#signin").await;
    browser
        .url_starting_with(&format!("{app}/protected/claims.shtml"))
        .await;
    let user = browser.text("#user").await;
    let email = browser.text("#email").await;
    let name = browser.text("#name").await;
    let groups = browser.text("#groups").await;
    browser
        .screenshot(&target_dir().join("apache-oidc-claims.png"))
        .await;
    browser.quit().await;
    let log = std::fs::read_to_string(root.join("error.log")).unwrap_or_default();
    assert_eq!(user.trim(), EMAIL, "REMOTE_USER; apache log:\n{log}");
    assert_eq!(email.trim(), EMAIL);
    assert_eq!(name.trim(), "Ann");
    assert_eq!(groups.trim(), "acme,acme:admin");
}

/// The httpd configuration: the README's recipe with loopback ports and a temp root.
fn apache_conf(root: &std::path::Path, port: u16, issuer: &str, secret: &str) -> String {
    let root = root.display();
    format!(
        r#"ServerRoot "{root}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile {root}/httpd.pid
ErrorLog {root}/error.log
LogLevel warn auth_openidc:info
DefaultRuntimeDir {root}
User nobody
Group nogroup
LoadModule mpm_event_module {MODULES}/mod_mpm_event.so
LoadModule authz_core_module {MODULES}/mod_authz_core.so
LoadModule authn_core_module {MODULES}/mod_authn_core.so
LoadModule authz_user_module {MODULES}/mod_authz_user.so
LoadModule include_module {MODULES}/mod_include.so
LoadModule auth_openidc_module {MODULES}/mod_auth_openidc.so
DocumentRoot {root}/htdocs

OIDCProviderMetadataURL {issuer}/.well-known/openid-configuration
OIDCClientID apache
OIDCClientSecret {secret}
OIDCRedirectURI http://127.0.0.1:{port}/protected/redirect_uri
OIDCCryptoPassphrase a-long-random-passphrase-for-cookies
OIDCScope "openid email profile groups"
OIDCPKCEMethod S256
OIDCRemoteUserClaim email
OIDCPassClaimsAs environment

<Location /protected>
  AuthType openid-connect
  Require valid-user
</Location>
<Directory {root}/htdocs/protected>
  Options +Includes
  SetOutputFilter INCLUDES
  ForceType text/html
</Directory>
"#
    )
}
