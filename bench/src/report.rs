//! Turns the workloads' JSON lines into the one table and the machine-readable results.

use serde_json::{json, Value};

use crate::{Args, Res};

pub(crate) struct Row {
    pub(crate) workload: String,
    pub(crate) value: String,
    pub(crate) p50: String,
    pub(crate) p99: String,
    pub(crate) errors: String,
    pub(crate) target: String,
    pub(crate) met: Option<bool>,
    pub(crate) notes: String,
}

const P99_TARGET_MS: f64 = 10.0;

pub(crate) fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or(0.0)
}

pub(crate) fn ms(v: f64) -> String {
    format!("{v:.2} ms")
}

fn load_row(r: &Value, label: &str, min_rate: f64, peers: &str, extra: &str) -> Row {
    let res = &r["result"];
    let rate = f(res, "req_per_s");
    let p99 = f(res, "p99_ms");
    let errors = res["errors"].as_u64().unwrap_or(0);
    let met = rate >= min_rate && p99 <= P99_TARGET_MS && errors == 0;
    let mut notes = format!("c={}, {} req in {:.1} s", res["connections"], res["requests"], f(res, "seconds"));
    let cpu = &r["cpu"];
    if let (Some(g), Some(s)) = (cpu["generator_cores"].as_f64(), cpu["server_cores"].as_f64()) {
        notes.push_str(&format!("; CPU cores: server {s:.2}, generator {g:.2}"));
    }
    if !extra.is_empty() {
        notes.push_str("; ");
        notes.push_str(extra);
    }
    if let Some(e) = res["first_error"].as_str() {
        notes.push_str(&format!("; first error: {}", e.chars().take(80).collect::<String>()));
    }
    notes.push_str("; peers: ");
    notes.push_str(peers);
    Row {
        workload: label.into(),
        value: format!("{rate:.0} req/s"),
        p50: ms(f(res, "p50_ms")),
        p99: ms(p99),
        errors: errors.to_string(),
        target: format!("≥ {min_rate:.0} req/s, p99 ≤ {P99_TARGET_MS:.0} ms"),
        met: Some(met),
        notes,
    }
}

pub(crate) fn plain(workload: &str, value: String, target: &str, met: Option<bool>, notes: String) -> Row {
    Row {
        workload: workload.into(),
        value,
        p50: "-".into(),
        p99: "-".into(),
        errors: "-".into(),
        target: target.into(),
        met,
        notes,
    }
}

pub(crate) fn mb(kb: f64) -> String {
    format!("{:.1} MB", kb * 1024.0 / 1e6)
}

pub fn report(args: &Args) -> Res<()> {
    let input = args.get("in")?;
    let text = std::fs::read_to_string(input).map_err(|e| format!("{input}: {e}"))?;
    let records: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{input}: {e}")))
        .collect::<Res<_>>()?;
    let find = |id: &str| records.iter().find(|r| r["workload"] == id);
    let mut rows = Vec::new();

    // W1–W3 plain, then the same over TLS (rows "… TLS", with the % of the plain rate),
    // then on PostgreSQL: one instance, and two behind nginx (issue 15: W1 and W3 at least
    // as fast as the SQLite rows of the same run, W2 ≥ 20000 req/s).
    for (sfx, label_sfx) in [("", ""), ("-tls", " TLS"), ("-pg", " PostgreSQL"), ("-pg2", " PostgreSQL ×2 (nginx)")] {
        let on_postgres = sfx.starts_with("-pg");
        let row = |id: &str, label: &str, min: f64, peers: &str, extra: &str| {
            let r = find(&format!("{id}{sfx}"))?;
            let label = format!("{label}{label_sfx}");
            let extra = crate::tls::vs_plain(r, find(id), extra);
            let min = match (on_postgres, id) {
                (true, "W2a" | "W2b") => 20000.0,
                // As fast as the SQLite store on the same machine, when this run measured it.
                (true, _) => find(id).map_or(min, |p| f(&p["result"], "req_per_s")),
                (false, _) => min,
            };
            Some(load_row(r, &label, min, peers, &extra))
        };
        let w1_extra = find(&format!("W1{sfx}"))
            .map(|r| format!("{} codes minted, {} used", r["codes_minted"], r["codes_used"]))
            .unwrap_or_default();
        rows.extend(row("W1", "W1 code exchange", 2500.0, "node-oidc 213–252, DOT 87–113", &w1_extra));
        rows.extend(row("W2a", "W2a introspect", 30000.0, "node-oidc ~2940–3030, DOT 414–480", ""));
        rows.extend(row("W2b", "W2b verify (Bearer)", 30000.0, "node-oidc ~2940–3030, DOT 414–480", ""));
        rows.extend(row("W3a", "W3a refresh confidential", 5000.0, "node-oidc 474–543, DOT 105–134", ""));
        rows.extend(row("W3b", "W3b refresh public rotating", 5000.0, "node-oidc 474–543, DOT 105–134", "each refresh token used once (chained)"));
    }

    // W4: footprint.
    if let Some(r) = find("W4") {
        let idle = r["idle_rss_kb_median"].as_f64();
        rows.push(plain(
            "W4 idle RSS",
            idle.map_or("?".into(), mb),
            "≤ 8 MB",
            idle.map(|kb| kb * 1024.0 <= 8e6),
            "VmRSS 0.5 s after first 200 from /healthz (median); peers: node-oidc 80 MB, DOT 138 MB".into(),
        ));
    }
    let peak = records
        .iter()
        .filter(|r| matches!(r["workload"].as_str(), Some("W1" | "W2a" | "W2b" | "W3a" | "W3b")))
        .filter_map(|r| r["memory_end"]["hwm_kb"].as_f64())
        .fold(None::<f64>, |m, v| Some(m.map_or(v, |m| m.max(v))));
    if let Some(kb) = peak {
        rows.push(plain(
            "W4 peak RSS (W1–W3)",
            mb(kb),
            "-",
            None,
            "max VmHWM over the W1–W3 servers at the end of each run".into(),
        ));
    }
    if let Some(r) = find("W4") {
        let ms = f(r, "startup_ms_median");
        rows.push(plain(
            "W4 start → first 200",
            format!("{ms:.1} ms"),
            "≤ 20 ms",
            Some(ms <= 20.0),
            format!("exec → 200 from /healthz, median of {}; peers: node-oidc 355–403 ms, DOT ~530 ms", r["startup_ms_all"].as_array().map_or(0, Vec::len)),
        ));
    }
    if let Some(bin) = args.opt("bin") {
        if let Ok(meta) = std::fs::metadata(bin) {
            let bytes = meta.len() as f64;
            rows.push(plain(
                "W4 release binary",
                format!("{:.2} MB", bytes / 1e6),
                "≤ 10 MB",
                Some(bytes <= 10e6),
                format!("{bin}, {} bytes", meta.len()),
            ));
        }
    }

    // W5: logins against the PBKDF2 limit, and W2(b) beside them.
    if let Some(r) = find("W5") {
        let logins = &r["logins"];
        let pct = f(r, "logins_pct_of_limit");
        rows.push(Row {
            workload: "W5 logins (600k PBKDF2)".into(),
            value: format!("{:.2} logins/s", f(logins, "req_per_s")),
            p50: ms(f(logins, "p50_ms")),
            p99: ms(f(logins, "p99_ms")),
            errors: logins["errors"].to_string(),
            target: "≥ 90% of PBKDF2 limit".into(),
            met: Some(pct >= 90.0),
            notes: format!(
                "{pct:.1}% of limit {:.2}/s = {} cores ÷ {:.1} ms/hash (measured in-process); c={}{}",
                f(r, "pbkdf2_limit_per_s"),
                r["cores"],
                f(r, "pbkdf2_ms_per_hash"),
                logins["connections"],
                logins["first_error"].as_str().map(|e| format!("; first error: {e}")).unwrap_or_default()
            ),
        });
        let storm = &r["w2_storm"];
        let solo = &r["w2_solo"];
        let pct = f(r, "w2_storm_pct_of_solo");
        rows.push(Row {
            workload: "W5 W2b during storm".into(),
            value: format!("{:.0} req/s", f(storm, "req_per_s")),
            p50: ms(f(storm, "p50_ms")),
            p99: ms(f(storm, "p99_ms")),
            errors: storm["errors"].to_string(),
            target: "≥ 80% of W2b solo".into(),
            met: Some(pct >= 80.0),
            notes: format!(
                "{pct:.1}% of solo {:.0} req/s (solo p99 {:.2} ms), c={}",
                f(solo, "req_per_s"),
                f(solo, "p99_ms"),
                storm["connections"]
            ),
        });
    }

    rows.extend(crate::tls::footprint_rows(&records));

    if let Some(r) = find("W6") {
        rows.extend(crate::devices::rows(r));
    }

    print_table(&rows);

    let table: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "workload": r.workload, "value": r.value, "p50": r.p50, "p99": r.p99,
                "errors": r.errors, "target": r.target, "met": r.met, "notes": r.notes,
            })
        })
        .collect();
    let meta: Value = match args.opt("meta") {
        Some(m) => serde_json::from_str(m).map_err(|e| format!("--meta: {e}"))?,
        None => Value::Null,
    };
    let doc = json!({
        "meta": meta,
        "table": table,
        "workloads": records,
    });
    let pretty = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    for key in ["json-out", "json-copy"] {
        if let Some(path) = args.opt(key) {
            std::fs::write(path, format!("{pretty}\n")).map_err(|e| format!("{path}: {e}"))?;
        }
    }
    Ok(())
}

fn print_table(rows: &[Row]) {
    let header = ["workload", "req/s or value", "p50", "p99", "errors", "target", "met?", "notes"];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.workload.clone(),
                r.value.clone(),
                r.p50.clone(),
                r.p99.clone(),
                r.errors.clone(),
                r.target.clone(),
                match r.met {
                    Some(true) => "yes".into(),
                    Some(false) => "NO".into(),
                    None => "-".into(),
                },
                r.notes.clone(),
            ]
        })
        .collect();
    let mut width = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row.iter()).take(7) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: &[String]| {
        let mut s = String::from("|");
        for (i, c) in row.iter().enumerate() {
            let pad = if i < 7 { width[i].saturating_sub(c.chars().count()) } else { 0 };
            s.push_str(&format!(" {c}{} |", " ".repeat(pad)));
        }
        println!("{s}");
    };
    line(&header.map(String::from));
    let sep: Vec<String> = (0..8)
        .map(|i| "-".repeat(if i < 7 { width[i] } else { 5 }))
        .collect();
    line(&sep);
    for row in &cells {
        line(row);
    }
}
