//! OpenID Connect core over HTTP: discovery at every location, the id_token of the code
//! flow and of a refresh (verified against the JWKS with `ring`), claims by scope,
//! UserInfo, per-client algorithms and allowed scopes, RFC 9207 `iss`, key rotation.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{self, UnparsedPublicKey};
use serde_json::{json, Value};

use crate::flow_support::{basic, get_bearer, login_code, page_form, post_form};
use crate::support::{agent, assert_success, expect_exit, reply, Oauthd, Reply, Server};

const EMAIL: &str = "bbb@grovestreams.com";
const PASSWORD: &str = "bbb";
const REDIRECT: &str = "http://acme.com";

struct Site {
    o: Oauthd,
    server: Server,
    user_id: String,
    secrets: std::collections::HashMap<String, String>,
}

/// A user "Ann" in two organizations, confidential clients `123` (RS256), `es` (ES256)
/// and `ed` (EdDSA), and `narrow`, which may only ask for `openid email`.
fn site(serve_flags: &[&str]) -> Site {
    let o = Oauthd::new();
    let out = o.cli_stdin(
        &[
            "user",
            "add",
            EMAIL,
            "--name",
            "Ann",
            "--password-stdin",
            "--json",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert_success(&out, &["user", "add"]);
    let user: Value = serde_json::from_slice(&out.stdout).expect("json");
    for (org, role) in [("acme", "admin"), ("beta", "viewer")] {
        o.ok(&["org", "add", org]);
        o.ok(&["org", "member", "add", org, EMAIL, "--role", role]);
    }
    let mut secrets = std::collections::HashMap::new();
    for (id, extra) in [
        ("123", vec![]),
        ("es", vec!["--id-token-alg", "ES256"]),
        ("ed", vec!["--id-token-alg", "EdDSA"]),
        ("narrow", vec!["--scope", "openid", "--scope", "email"]),
    ] {
        let mut args = vec!["client", "add", "--name", "App", "--id", id];
        args.extend(["--redirect-uri", REDIRECT]);
        args.extend(extra);
        let v = o.json(&args);
        secrets.insert(
            id.to_owned(),
            v["client_secret"].as_str().expect("secret").to_owned(),
        );
    }
    let server = o.serve(serve_flags);
    Site {
        user_id: user["id"].as_str().expect("id").to_owned(),
        o,
        server,
        secrets,
    }
}

impl Site {
    /// Signs in headlessly for `client_id` with `scope` (and `nonce`) and exchanges the
    /// code; returns the token answer.
    fn tokens(&self, client_id: &str, scope: &str, nonce: Option<&str>) -> Value {
        let mut overrides = json!({"client_id": client_id, "scope": scope});
        if let Some(nonce) = nonce {
            overrides["nonce"] = json!(nonce);
        }
        let code = login_code(&self.server, overrides);
        let r = post_form(
            &self.server,
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
            ],
            Some(&basic(client_id, &self.secrets[client_id])),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }

    /// Refreshes as `client_id` (optionally narrowing the scope); insists on a 200.
    fn refresh(&self, client_id: &str, refresh_token: &str, scope: Option<&str>) -> Reply {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        form.extend(scope.map(|scope| ("scope", scope)));
        let r = post_form(
            &self.server,
            "/oauth/token",
            &form,
            Some(&basic(client_id, &self.secrets[client_id])),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r
    }

    fn get(&self, path: &str) -> Reply {
        reply(agent().get(&self.server.url(path)).call())
    }
}

/// Verifies `token` against the server's JWKS and returns (header, claims).
fn verified(site: &Site, token: &str) -> (Value, Value) {
    verify_against(&site.get("/oauth/jwks").json(), token)
}

/// Verifies `token` against the JWK Set `jwks` (its kid must be published there) and
/// returns (header, claims).
pub fn verify_against(jwks: &Value, token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "compact JWS: {token}");
    let decode = |part: &str| -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("b64")).expect("json")
    };
    let (header, claims) = (decode(parts[0]), decode(parts[1]));
    let key = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .unwrap_or_else(|| panic!("kid {} is published: {jwks}", header["kid"]))
        .clone();
    assert_eq!(key["alg"], header["alg"]);
    let field = |name: &str| {
        URL_SAFE_NO_PAD
            .decode(key[name].as_str().expect(name))
            .expect("b64")
    };
    let input = format!("{}.{}", parts[0], parts[1]);
    let sig = URL_SAFE_NO_PAD.decode(parts[2]).expect("b64");
    let ok = match header["alg"].as_str().expect("alg") {
        "RS256" => signature::RsaPublicKeyComponents {
            n: field("n"),
            e: field("e"),
        }
        .verify(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            input.as_bytes(),
            &sig,
        )
        .is_ok(),
        "ES256" => {
            let mut point = vec![4u8];
            point.extend(field("x"));
            point.extend(field("y"));
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(input.as_bytes(), &sig)
                .is_ok()
        }
        "EdDSA" => UnparsedPublicKey::new(&signature::ED25519, field("x"))
            .verify(input.as_bytes(), &sig)
            .is_ok(),
        other => panic!("unexpected alg {other}"),
    };
    assert!(ok, "signature verifies with the published key");
    (header, claims)
}

#[test]
fn discovery_is_served_at_every_location_with_only_what_is_implemented() {
    let s = site(&["--issuer", "https://auth.example.com/tenant-a"]);
    let paths = [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-authorization-server/tenant-a",
        "/tenant-a/.well-known/openid-configuration",
    ];
    let first = s.get(paths[0]).json();
    for path in paths {
        let r = s.get(path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.json(), first, "{path} serves the same facts");
    }
    assert_eq!(first["issuer"], "https://auth.example.com/tenant-a");
    assert_eq!(
        first["jwks_uri"],
        "https://auth.example.com/tenant-a/oauth/jwks"
    );
    assert_eq!(
        first["userinfo_endpoint"],
        "https://auth.example.com/tenant-a/oauth/userinfo"
    );
    assert_eq!(
        first["id_token_signing_alg_values_supported"],
        json!(["RS256", "ES256", "EdDSA"])
    );
    assert_eq!(
        first["authorization_response_iss_parameter_supported"],
        true
    );
    assert_eq!(first["request_uri_parameter_supported"], false);
    assert_eq!(first["subject_types_supported"], json!(["public"]));
    for other in [
        "/.well-known/oauth-authorization-server/tenant-b",
        "/tenant-b/.well-known/openid-configuration",
    ] {
        assert_eq!(s.get(other).status, 404, "{other}");
    }
    let jwks = s.get("/oauth/jwks");
    assert_eq!(jwks.status, 200);
    assert_eq!(
        jwks.header("content-type"),
        Some("application/jwk-set+json")
    );
    let keys = jwks.json()["keys"].as_array().expect("keys").clone();
    assert_eq!(
        keys.len(),
        1,
        "the RS256 key is generated on first use: {keys:?}"
    );
    assert_eq!(keys[0]["kty"], "RSA");
    assert!(keys[0].get("d").is_none(), "no private member is published");
}

#[test]
fn openid_code_flow_answers_a_signed_id_token_bound_to_the_nonce() {
    let s = site(&["--issuer", "https://id.example"]);
    let before = oauthd_now();
    let answer = s.tokens("123", "openid email profile groups", Some("n-0S6_WzA2Mj"));
    let access = answer["access_token"].as_str().expect("access");
    let (header, claims) = verified(&s, answer["id_token"].as_str().expect("id_token"));
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(claims["iss"], "https://id.example");
    assert_eq!(claims["sub"], s.user_id.as_str());
    assert_eq!(claims["aud"], "123");
    assert_eq!(claims["azp"], "123");
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(claims["email"], EMAIL);
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["name"], "Ann");
    assert_eq!(
        claims["groups"],
        json!(["acme", "beta", "acme:admin", "beta:viewer"])
    );
    let iat = claims["iat"].as_i64().expect("iat");
    let auth_time = claims["auth_time"].as_i64().expect("auth_time");
    assert!(iat >= before && auth_time >= before && auth_time <= iat);
    assert_eq!(claims["exp"].as_i64(), Some(iat + 3600));
    let digest = ring::digest::digest(&ring::digest::SHA256, access.as_bytes());
    assert_eq!(
        claims["at_hash"],
        URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])
    );

    // A refresh answers a new id_token for the same subject and sign-in, without nonce.
    let refresh_token = answer["refresh_token"].as_str().expect("rt");
    let r = s.refresh("123", refresh_token, None);
    let (_, refreshed) = verified(&s, r.json()["id_token"].as_str().expect("id_token"));
    assert_eq!(refreshed["sub"], claims["sub"]);
    assert_eq!(refreshed["auth_time"], claims["auth_time"]);
    assert!(refreshed.get("nonce").is_none());

    // A refresh narrowed to a scope without openid answers no id_token.
    let r = s.refresh("123", refresh_token, Some("email"));
    assert!(r.json().get("id_token").is_none(), "{}", r.body);
}

#[test]
fn claims_follow_the_scope_and_no_id_token_is_issued_without_openid() {
    let s = site(&[]);
    let answer = s.tokens("123", "openid", None);
    let (_, claims) = verified(&s, answer["id_token"].as_str().expect("id_token"));
    for absent in ["email", "name", "groups", "nonce"] {
        assert!(claims.get(absent).is_none(), "{absent} without its scope");
    }

    let plain = s.tokens("123", "email profile groups", Some("n"));
    assert!(
        plain.get("id_token").is_none(),
        "no openid, no id_token: {plain}"
    );
    let access = plain["access_token"].as_str().expect("access");
    let r = get_bearer(&s.server, "/oauth/userinfo", access);
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["error"], "insufficient_scope");
}

#[test]
fn userinfo_answers_get_and_post_with_claims_by_scope() {
    let s = site(&[]);
    let answer = s.tokens("123", "openid email", None);
    let access = answer["access_token"].as_str().expect("access");
    let get = get_bearer(&s.server, "/oauth/userinfo", access);
    assert_eq!(get.status, 200, "{}", get.body);
    assert_eq!(
        get.json(),
        json!({"sub": s.user_id, "email": EMAIL, "email_verified": true})
    );
    let post = post_form(
        &s.server,
        "/oauth/userinfo",
        &[],
        Some(&format!("Bearer {access}")),
    );
    assert_eq!(post.status, 200, "{}", post.body);
    assert_eq!(post.json(), get.json());
    assert_eq!(get_bearer(&s.server, "/oauth/userinfo", "nope").status, 401);
    let missing = reply(agent().get(&s.server.url("/oauth/userinfo")).call());
    assert_eq!(missing.status, 401);
}

#[test]
fn each_client_gets_id_tokens_signed_with_its_own_algorithm() {
    let s = site(&[]);
    for (client, alg) in [("123", "RS256"), ("es", "ES256"), ("ed", "EdDSA")] {
        let answer = s.tokens(client, "openid", None);
        let (header, claims) = verified(&s, answer["id_token"].as_str().expect("id_token"));
        assert_eq!(header["alg"], alg, "{client}");
        assert_eq!(claims["aud"], client);
    }
    let jwks = s.get("/oauth/jwks").json();
    let kty: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kty"].as_str().expect("kty"))
        .collect();
    assert_eq!(kty, ["RSA", "EC", "OKP"]);
    let shown = s.o.json(&["client", "show", "ed"]);
    assert_eq!(shown["id_token_alg"], "EdDSA");
    assert_eq!(shown["first_party"], true);
    for bad in ["none", "HS256", "rs256"] {
        refuse_client_add(&s.o, &["--id-token-alg", bad], 2);
    }
}

#[test]
fn allowed_scopes_refuse_other_scopes_at_authorization() {
    let s = site(&[]);
    let shown = s.o.json(&["client", "show", "narrow"]);
    assert_eq!(shown["allowed_scopes"], "openid email");
    let answer = s.tokens("narrow", "openid email", None);
    assert!(answer.get("id_token").is_some());
    let query = "response_type=code&client_id=narrow&redirect_uri=http%3A%2F%2Facme.com\
                 &scope=openid%20profile&state=s1";
    let r = s.get(&format!("/oauth/authorize?{query}"));
    assert_eq!(r.status, 302);
    let location = url::Url::parse(r.header("location").expect("location")).expect("url");
    let pairs: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("error"), Some("invalid_scope"));
    assert_eq!(get("state"), Some("s1"));
    assert_eq!(
        get("iss"),
        Some(format!("http://{}", s.server.addr).as_str())
    );
    refuse_client_add(&s.o, &["--scope", "a\"b"], 2);
}

#[test]
fn the_sign_in_page_redirects_with_iss_and_its_code_carries_the_nonce() {
    let s = site(&["--issuer", "https://id.example"]);
    let query = "response_type=code&client_id=123&redirect_uri=http%3A%2F%2Facme.com\
                 &scope=openid&state=st&nonce=page-nonce";
    let page = s.get(&format!("/oauth/authorize?{query}"));
    assert_eq!(page.status, 200);
    let (cookie, fields) = page_form(&page);
    let mut form: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    form.extend([("email", EMAIL), ("password", PASSWORD)]);
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&form)
        .finish();
    let r = reply(
        agent()
            .post(&s.server.url("/oauth/authorize"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", &cookie)
            .send(body),
    );
    assert_eq!(r.status, 302, "{}", r.body);
    let location = url::Url::parse(r.header("location").expect("location")).expect("url");
    let pairs: std::collections::HashMap<String, String> =
        location.query_pairs().into_owned().collect();
    assert_eq!(pairs["iss"], "https://id.example");
    assert_eq!(pairs["state"], "st");
    let t = post_form(
        &s.server,
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &pairs["code"]),
            ("redirect_uri", REDIRECT),
        ],
        Some(&basic("123", &s.secrets["123"])),
    );
    let (_, claims) = verified(&s, t.json()["id_token"].as_str().expect("id_token"));
    assert_eq!(claims["nonce"], "page-nonce");
}

#[test]
fn key_rotation_publishes_at_once_and_signs_after_the_delay() {
    let s = site(&[]);
    let first = s.tokens("123", "openid", None);
    let (old, _) = verified(&s, first["id_token"].as_str().expect("id_token"));

    // With a delay, the new key is published but the old one still signs.
    let rotated = s.o.json(&["key", "rotate", "--signing-delay", "3600"]);
    let upcoming = rotated[0]["kid"].as_str().expect("kid").to_owned();
    assert_eq!(rotated[0]["phase"], "upcoming");
    let kids = |s: &Site| -> Vec<String> {
        s.get("/oauth/jwks").json()["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["kid"].as_str().expect("kid").to_owned())
            .collect()
    };
    assert!(kids(&s).contains(&upcoming));
    let (header, _) = verified(
        &s,
        s.tokens("123", "openid", None)["id_token"]
            .as_str()
            .expect("t"),
    );
    assert_eq!(
        header["kid"], old["kid"],
        "the old key signs until the delay passes"
    );

    // Without a delay, the newest key signs at once; the replaced ones stay published.
    let now =
        s.o.json(&["key", "rotate", "--alg", "RS256", "--signing-delay", "0"]);
    let newest = now[0]["kid"].as_str().expect("kid").to_owned();
    let (header, _) = verified(
        &s,
        s.tokens("123", "openid", None)["id_token"]
            .as_str()
            .expect("t"),
    );
    assert_eq!(header["kid"], newest.as_str());
    let published = kids(&s);
    assert!(published.contains(&old["kid"].as_str().expect("kid").to_owned()));
    assert!(published.contains(&upcoming));
    // The id_token signed before the rotation still verifies.
    verified(&s, first["id_token"].as_str().expect("id_token"));

    let listed = s.o.json(&["key", "list"]);
    let phase = |kid: &str| {
        listed
            .as_array()
            .expect("rows")
            .iter()
            .find(|row| row["kid"] == kid)
            .map(|row| row["phase"].as_str().expect("phase").to_owned())
    };
    assert_eq!(phase(&newest).as_deref(), Some("signing"));
    assert_eq!(
        phase(old["kid"].as_str().expect("kid")).as_deref(),
        Some("retired")
    );
    let text = s.o.ok(&["key", "list"]);
    assert!(
        text.contains("PUBLISHED_UNTIL") && !text.contains("PRIVATE"),
        "{text}"
    );
    let audit = s.o.ok(&["audit"]);
    assert!(audit.contains("key_rotate"), "{audit}");
}

/// `client add` with `extra` flags must exit with `code` and change nothing.
fn refuse_client_add(o: &Oauthd, extra: &[&str], code: i32) {
    let mut args = vec!["client", "add", "--name", "x", "--redirect-uri", REDIRECT];
    args.extend(extra);
    expect_exit(o, &args, code);
}

/// The server's clock, as the CLI's audit trail has no finer one: the test machine's.
fn oauthd_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// A rotation deletes the keys whose every id_token has expired (retired more than the
/// id_token lifetime ago); a key retired just now stays, published.
#[test]
fn rotation_deletes_keys_no_valid_id_token_can_name() {
    let o = Oauthd::new();
    crate::support::create_empty_db(&o);
    let kid = |rows: &Value| rows[0]["kid"].as_str().expect("kid").to_owned();
    let first = kid(&o.json(&["key", "rotate", "--alg", "RS256"]));
    let second = kid(&o.json(&["key", "rotate", "--alg", "RS256", "--signing-delay", "0"]));
    let listed = |o: &Oauthd| -> Vec<(String, String)> {
        o.json(&["key", "list"])
            .as_array()
            .expect("rows")
            .iter()
            .map(|row| {
                (
                    row["kid"].as_str().expect("kid").to_owned(),
                    row["phase"].as_str().expect("phase").to_owned(),
                )
            })
            .collect()
    };
    assert!(listed(&o).contains(&(first.clone(), "retired".to_owned())));
    // Two hours pass (the id_token lifetime is one): the first key's tokens have expired.
    o.sql("UPDATE signing_keys SET created_at = created_at - 7200, signs_from = signs_from - 7200");
    assert!(listed(&o).contains(&(first.clone(), "expired".to_owned())));
    let third = kid(&o.json(&["key", "rotate", "--alg", "RS256", "--signing-delay", "0"]));
    let after = listed(&o);
    assert!(
        !after.iter().any(|(k, _)| *k == first),
        "the expired key is deleted: {after:?}"
    );
    assert!(after.contains(&(second, "retired".to_owned())), "{after:?}");
    assert!(after.contains(&(third, "signing".to_owned())), "{after:?}");
}
