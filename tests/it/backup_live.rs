//! `oauthd backup` while the server writes (SPEC §3: "safe while `serve` runs"): each copy
//! passes the integrity check, and every token acknowledged before the backup started
//! works on a server started from the copy.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use serde_json::json;

use crate::flow_support::*;
use crate::support::{path_in, Oauthd};

const WORKERS: usize = 4;
/// Each worker stops after this many logins, even if the test never tells it to.
const MAX_LOGINS_PER_WORKER: usize = 400;
const BACKUPS: usize = 3;
/// Tokens to wait for before each backup, so every backup starts with writes in flight.
const TOKENS_BEFORE_EACH_BACKUP: usize = 10;

#[test]
fn backups_taken_during_logins_are_intact_and_keep_earlier_tokens() {
    crate::support::sqlite_only!();
    let s = Arc::new(seeded(&[]));
    let stop = Arc::new(AtomicBool::new(false));
    let (issued_tx, issued_rx) = mpsc::channel::<Result<String, String>>();
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (s, stop, issued_tx) = (Arc::clone(&s), Arc::clone(&stop), issued_tx.clone());
            std::thread::spawn(move || {
                for _ in 0..MAX_LOGINS_PER_WORKER {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let code = login_code(&s.server, json!({}));
                    let r = exchange(&s, &code);
                    let token = if r.status == 200 {
                        r.json()["access_token"]
                            .as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| r.body.clone())
                    } else {
                        Err(format!("exchange {}: {}", r.status, r.body))
                    };
                    if issued_tx.send(token).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    drop(issued_tx);

    let mut acknowledged: Vec<String> = Vec::new();
    let mut backups = Vec::new();
    for n in 0..BACKUPS {
        // Block on the workers' results (no sleeping): a few more tokens before each copy.
        for _ in 0..TOKENS_BEFORE_EACH_BACKUP {
            let token = issued_rx
                .recv()
                .expect("workers stopped early")
                .unwrap_or_else(|e| panic!("{e}"));
            acknowledged.push(token);
        }
        // Anything already queued was acknowledged before this backup starts, too.
        while let Ok(token) = issued_rx.try_recv() {
            acknowledged.push(token.unwrap_or_else(|e| panic!("{e}")));
        }
        let dest = path_in(&s.o, &format!("backup-{n}.db"));
        s.o.ok(&["backup", dest.to_str().expect("utf-8 path")]);
        backups.push((dest, acknowledged.clone()));
    }
    stop.store(true, Ordering::Relaxed);
    // Drain so no worker blocks, and make sure none failed meanwhile.
    for token in issued_rx.iter() {
        token.unwrap_or_else(|e| panic!("{e}"));
    }
    for worker in workers {
        worker.join().expect("worker");
    }
    let logs = s.server.logs();
    assert!(!logs.contains("database is locked"), "{logs}");

    for (dest, tokens) in backups {
        let copy = Oauthd {
            dir: tempfile::tempdir().expect("tempdir"),
            db: dest.clone(),
            pg: None,
        };
        let check = copy.json(&["check"]);
        assert_eq!(check["integrity"], "ok", "{}: {check}", dest.display());
        assert!(
            check["live_access_tokens"].as_i64().unwrap_or(0) >= tokens.len() as i64,
            "{}: {check}",
            dest.display()
        );
        let server = copy.serve(&[]);
        for token in &tokens {
            let r = get_bearer(&server, "/api/auth/verify", token);
            assert_eq!(
                r.status,
                200,
                "{}: a token acknowledged before the backup does not work on it",
                dest.display()
            );
            assert_eq!(r.header("x-auth-email"), Some(EMAIL));
        }
    }
}
