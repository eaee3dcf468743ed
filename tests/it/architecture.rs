//! Source checks of the crate's layering, read from `src/` (no server is started): no
//! import cycle among `src/` files, handlers never import the server that calls them, and
//! the store takes only facts and decisions from the rule book.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crate's `src/` folder.
fn src_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/`; other source checks read them too.
pub fn rust_sources() -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![src_root()];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            pending.extend(
                std::fs::read_dir(&path)
                    .expect("dir")
                    .map(|e| e.expect("entry").path()),
            );
        } else if path.extension() == Some(std::ffi::OsStr::new("rs")) {
            found.push(path);
        }
    }
    found
}

/// Every `.rs` file under `src/`, keyed by its module path (`["store", "grants"]`).
fn modules() -> BTreeMap<Vec<String>, PathBuf> {
    let root = src_root();
    let mut found = BTreeMap::new();
    for path in rust_sources() {
        let relative = path.strip_prefix(&root).expect("under src");
        let mut module: Vec<String> = relative
            .with_extension("")
            .iter()
            .map(|part| part.to_string_lossy().into_owned())
            .collect();
        if matches!(module.last().map(String::as_str), Some("mod" | "main")) {
            module.pop();
        }
        found.insert(module, path);
    }
    found
}

/// The code of a file without its comments and its `#[cfg(test)] mod tests` (tests may
/// import what they test from anywhere).
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read");
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => &text[..],
    };
    text.lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Expands one use tree (`a::{b, c::d}` or a plain path) into its paths.
fn use_tree(text: &mut std::iter::Peekable<std::str::Chars>) -> Vec<Vec<String>> {
    let mut prefix = Vec::new();
    loop {
        while text.peek().is_some_and(|c| c.is_whitespace()) {
            text.next();
        }
        if text.peek() == Some(&'{') {
            text.next();
            let mut paths = Vec::new();
            loop {
                for tail in use_tree(text) {
                    paths.push([prefix.clone(), tail].concat());
                }
                while text.peek().is_some_and(|c| c.is_whitespace()) {
                    text.next();
                }
                match text.next() {
                    Some(',') => continue,
                    _ => return paths,
                }
            }
        }
        let mut ident = String::new();
        while let Some(&c) = text.peek() {
            if c.is_alphanumeric() || c == '_' {
                ident.push(c);
                text.next();
            } else {
                break;
            }
        }
        if ident.is_empty() {
            return vec![prefix];
        }
        prefix.push(ident);
        let mut lookahead = text.clone();
        if lookahead.next() == Some(':') && lookahead.next() == Some(':') {
            text.next();
            text.next();
        } else {
            return vec![prefix];
        }
    }
}

/// The files a module's code names through `crate::` or `super::` paths. A `mod.rs`
/// naming its own children (`pub use child::X`) is structure, not an import, and is not
/// counted.
fn imports(
    module: &[String],
    code: &str,
    all: &BTreeMap<Vec<String>, PathBuf>,
) -> BTreeSet<Vec<String>> {
    let mut named = BTreeSet::new();
    for (anchor, base) in [
        ("crate::", Vec::new()),
        // `super` of module `a::b` is `a`, whether it lives in `a/b.rs` or `a/b/mod.rs`.
        ("super::", module[..module.len().saturating_sub(1)].to_vec()),
    ] {
        for (at, _) in code.match_indices(anchor) {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let mut rest = code[at + anchor.len()..].chars().peekable();
            for path in use_tree(&mut rest) {
                let full = [base.clone(), path].concat();
                // The longest prefix that is a file is the file the path points into.
                let target = (0..=full.len())
                    .rev()
                    .map(|n| full[..n].to_vec())
                    .find(|prefix| all.contains_key(prefix));
                if let Some(target) = target {
                    if target != module && !target.is_empty() {
                        named.insert(target);
                    }
                }
            }
        }
    }
    named
}

fn graph() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let all = modules();
    all.iter()
        .map(|(module, path)| (module.clone(), imports(module, &code_of(path), &all)))
        .collect()
}

/// A cycle reachable from `node`, as the list of modules on it, if any.
fn find_cycle(
    node: &Vec<String>,
    graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
    stack: &mut Vec<Vec<String>>,
    done: &mut BTreeSet<Vec<String>>,
) -> Option<Vec<String>> {
    if let Some(at) = stack.iter().position(|n| n == node) {
        return Some(stack[at..].iter().map(|m| m.join("::")).collect());
    }
    if done.contains(node) {
        return None;
    }
    stack.push(node.clone());
    for next in graph.get(node).into_iter().flatten() {
        if let Some(cycle) = find_cycle(next, graph, stack, done) {
            return Some(cycle);
        }
    }
    stack.pop();
    done.insert(node.clone());
    None
}

#[test]
fn use_trees_expand_groups_and_nested_groups() {
    let mut text = "a::{b, c::{d, e}, f}; x".chars().peekable();
    let paths: Vec<String> = use_tree(&mut text).iter().map(|p| p.join("::")).collect();
    assert_eq!(paths, ["a::b", "a::c::d", "a::c::e", "a::f"]);
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let edge = |a: &str, b: &str| (vec![a.to_owned()], BTreeSet::from([vec![b.to_owned()]]));
    let graph = BTreeMap::from([edge("a", "b"), edge("b", "c"), edge("c", "a")]);
    let cycle = find_cycle(
        &vec!["a".to_owned()],
        &graph,
        &mut Vec::new(),
        &mut BTreeSet::new(),
    );
    assert_eq!(cycle, Some(vec!["a".into(), "b".into(), "c".into()]));
}

#[test]
fn no_import_cycle_among_src_files() {
    let graph = graph();
    assert!(graph.len() > 20, "src/ was not found: {graph:?}");
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        let cycle = find_cycle(node, &graph, &mut Vec::new(), &mut done);
        assert_eq!(cycle, None, "an import cycle among src/ files");
    }
}

#[test]
fn handlers_never_import_the_server() {
    let graph = graph();
    let server = vec!["server".to_owned()];
    let routes = vec!["routes".to_owned()];
    for (module, named) in &graph {
        if module.first().map(String::as_str) == Some("endpoints") {
            assert!(!named.contains(&server), "{module:?} imports server");
            assert!(!named.contains(&routes), "{module:?} imports routes");
        }
    }
    assert!(
        graph[&vec!["endpoints".to_owned(), "token".to_owned()]].contains(&vec!["app".to_owned()])
    );
}

/// Only `error.rs` picks an error's status. Elsewhere a `StatusCode::` may only be one of
/// these (file, status) pairs: success answers and the redirect builder.
const STATUS_ALLOWED: [(&str, &str); 2] =
    [("*", "StatusCode::OK"), ("http.rs", "StatusCode::FOUND")];

#[test]
fn only_error_rs_picks_error_statuses() {
    let mut offenders = Vec::new();
    for (module, path) in modules() {
        if module == ["error"] {
            continue;
        }
        let code = code_of(&path);
        let file = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        for (at, _) in code.match_indices("StatusCode::") {
            let status: String = code[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let allowed = STATUS_ALLOWED
                .iter()
                .any(|(f, s)| (*f == "*" || *f == file) && *s == status);
            if !allowed {
                offenders.push(format!("{}: {status}", path.display()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "statuses chosen outside error.rs: {offenders:#?}"
    );
}

/// A `ParamError` becomes an `ApiError` in one place (`ApiError::bad_params`): outside
/// the parsers that produce it, no code names its variants.
#[test]
fn param_errors_are_mapped_only_in_error_rs() {
    let producers = [
        vec!["error"],
        vec!["http"],
        vec!["http", "json"],
        vec!["http", "props"],
        vec!["http", "json", "props"],
    ];
    let mut offenders = Vec::new();
    for (module, path) in modules() {
        if producers.iter().any(|p| *p == module) {
            continue;
        }
        if code_of(&path).contains("ParamError::") {
            offenders.push(path.display().to_string());
        }
    }
    assert!(
        offenders.is_empty(),
        "ParamError mapped outside error.rs: {offenders:?}"
    );
}

/// One name for one concept: the digest of a secret is `secret::SecretHash` alone, and
/// randomness comes from `secret.rs` alone (`fill_random`).
#[test]
fn one_digest_type_and_one_random_source() {
    let mut digest_types = Vec::new();
    let mut random_sources = Vec::new();
    for (_, path) in modules() {
        let code = code_of(&path);
        if code.contains("= [u8; 32];") && code.contains("pub type") {
            digest_types.push(path.display().to_string());
        }
        if code.contains("getrandom::") {
            random_sources.push(path.display().to_string());
        }
    }
    assert!(
        digest_types.len() == 1 && digest_types[0].ends_with("src/secret.rs"),
        "{digest_types:?}"
    );
    assert!(
        random_sources.len() == 1 && random_sources[0].ends_with("src/secret.rs"),
        "{random_sources:?}"
    );
}

/// Comments explain themselves: none cites a section of a document outside the repository.
#[test]
fn no_comment_cites_an_outside_document() {
    let mut offenders = Vec::new();
    for (_, path) in modules() {
        let text = std::fs::read_to_string(&path).expect("read");
        for (n, line) in text.lines().enumerate() {
            if line.contains("SPEC §") || line.contains("the seed's") {
                offenders.push(format!("{}:{}", path.display(), n + 1));
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}

/// The store decides nothing: from the rule book (`crate::oauth`) it names only the types
/// it fills with facts or carries out (`CodeFacts`, `RevocationDecision`, ...), never a
/// rule (a lower-case function such as `decide_refresh`), and no grace window reaches it.
#[test]
fn the_store_takes_only_facts_and_decisions_from_the_rule_book() {
    let mut offenders = Vec::new();
    let mut named_types = 0;
    for (module, path) in modules() {
        if module.first().map(String::as_str) != Some("store") {
            continue;
        }
        let code = code_of(&path);
        if code.to_ascii_lowercase().contains("grace") {
            offenders.push(format!("{}: names a grace window", path.display()));
        }
        for (at, _) in code.match_indices("crate::oauth") {
            let mut rest = code[at + "crate::".len()..].chars().peekable();
            for used in use_tree(&mut rest) {
                let last = used.last().map(String::as_str).unwrap_or_default();
                let is_type = last.chars().next().is_some_and(char::is_uppercase);
                if used.len() < 2 || !is_type {
                    offenders.push(format!("{}: {}", path.display(), used.join("::")));
                } else {
                    named_types += 1;
                }
            }
        }
    }
    assert!(
        named_types > 0,
        "the store names no rule-book types: check moved?"
    );
    assert!(offenders.is_empty(), "{offenders:#?}");
}

/// Conditions in the store's SQL that would decide what the rule book decides: whether a
/// token or code is live (`expires_at >`), revoked, rotated out or used, whether a user
/// may act. The store reads such facts as columns and `oauth` decides (`liveness`,
/// `Retention`, `decide_*`). The pairs below are the justified exceptions.
const STORE_DECISIONS: [&str; 7] = [
    "expires_at >",
    "expires_at <",
    "revoked_at IS NULL",
    "rotated_at IS NULL",
    "used_at IS NULL",
    "disabled = 0",
    "status = 'pending'",
];

/// (file under src/store, pattern): why it is not a decision.
const STORE_DECISIONS_ALLOWED: [(&str, &str); 14] = [
    // Deletion cutoffs computed by `oauth::Retention` (the file must name `RETENTION` or
    // take the policy as a parameter).
    ("grants/codes.rs", "expires_at <"),
    ("grants/mod.rs", "expires_at <"),
    ("sessions.rs", "expires_at <"),
    ("client_tokens.rs", "expires_at <"),
    ("devices.rs", "expires_at <"),
    ("housekeeping.rs", "expires_at <"),
    ("client_log.rs", "expires_at <"),
    // The fact "latest expiry among its unused codes" that `oauth::GrantUse` holds.
    ("housekeeping.rs", "used_at IS NULL"),
    // Revocation is terminal: selecting the unrevoked grants to revoke them (admin and
    // account page, the link doctor's snapshot of a user being disabled) or to list them
    // is reading state, not judging time.
    ("grants/revoke.rs", "revoked_at IS NULL"),
    ("account.rs", "revoked_at IS NULL"),
    ("client_log.rs", "revoked_at IS NULL"),
    // Compare-and-set guards of a carry-out: the write changes the row only while the fact
    // the rule book decided over still holds (unused code, live token, unanswered device
    // code); a race lost to another instance changes nothing and is decided again.
    ("grants/codes.rs", "used_at IS NULL"),
    ("grants/refresh.rs", "rotated_at IS NULL"),
    ("devices.rs", "status = 'pending'"),
];

/// The decision patterns in one store file's code that its allow-list entries do not
/// cover, and whether it applies a deletion cutoff (which must come from `RETENTION`).
fn store_decisions(file: &str, code: &str) -> (Vec<String>, bool) {
    let mut offenders = Vec::new();
    let mut cutoff = false;
    for pattern in STORE_DECISIONS {
        if !code.contains(pattern) {
            continue;
        }
        let allowed = STORE_DECISIONS_ALLOWED
            .iter()
            .any(|(f, p)| *f == file && *p == pattern);
        if !allowed {
            offenders.push(format!("src/store/{file}: {pattern}"));
        } else if pattern == "expires_at <" {
            cutoff = true;
            if !code.contains("RETENTION") && !code.contains("retention: &Retention") {
                offenders.push(format!(
                    "src/store/{file}: a deletion cutoff not taken from oauth::RETENTION"
                ));
            }
        }
    }
    (offenders, cutoff)
}

#[test]
fn the_store_decision_check_catches_a_liveness_condition() {
    let old_lookup = "SELECT a.created_at FROM access_tokens a JOIN grants g ON g.id = a.grant_id
         WHERE a.token_hash = ?1 AND a.expires_at > ?2 AND g.revoked_at IS NULL";
    let (offenders, _) = store_decisions("grants/lookup.rs", old_lookup);
    assert_eq!(offenders.len(), 2, "{offenders:?}");
    let own_cutoff = "DELETE FROM sessions WHERE expires_at <= ?1";
    let (offenders, cutoff) = store_decisions("sessions.rs", own_cutoff);
    assert!(cutoff && offenders.len() == 1, "{offenders:?}");
}

#[test]
fn the_store_sql_decides_no_liveness() {
    let store = src_root().join("store");
    let mut offenders = Vec::new();
    let mut cutoff_files = 0;
    for (module, path) in modules() {
        if module.first().map(String::as_str) != Some("store") {
            continue;
        }
        let file = path
            .strip_prefix(&store)
            .expect("under src/store")
            .to_string_lossy()
            .replace('\\', "/");
        let (found, cutoff) = store_decisions(&file, &code_of(&path));
        offenders.extend(found);
        cutoff_files += usize::from(cutoff);
    }
    assert!(cutoff_files >= 5, "the store's files were not scanned");
    assert!(
        offenders.is_empty(),
        "decisions in the store's SQL: {offenders:#?}"
    );
}
