//! W6: token validation (W2) while a crowd of devices polls the token endpoint (RFC 8628).
//!
//! Each of `--devices` devices (default 1000) asks `POST /oauth/device_authorization`
//! once, up front, then polls `grant_type=urn:ietf:params:oauth:grant-type:device_code`
//! every `interval` seconds on its own keep-alive connection (the first polls spread
//! evenly over one interval), honouring `slow_down` (+5 s). Nobody approves, so every
//! answer should be `authorization_pending`. Once every device has polled, `--rounds`
//! rounds (5) each run W2a and W2b for `--phase-secs` (3) solo (polls paused) and while
//! polling, alternating which comes first, so that load from neighbours on a shared
//! machine falls on both alike. The record holds both rates (all rounds together, and
//! per round), the poll rate achieved while measuring, every poll answer, how late the
//! polls were sent, and the database's files and the writer's committed-job counter
//! before and after the polling.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tokio::time::sleep_until;

use crate::load::{self, Config, Plan};
use crate::proc_meter::Window;
use crate::report::{f, ms, Row};
use crate::{cfg, emit, http, summary, w2_request, Args, CpuMeter, Res, Target};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 8628 §3.5: each `slow_down` lengthens the interval by this much.
const SLOW_DOWN_SECS: f64 = 5.0;

/// What one polling device saw.
#[derive(Default)]
struct Tally {
    /// Answers by their `error` (or `HTTP <status>` / `io`).
    answers: BTreeMap<String, u64>,
    /// Polls sent inside the measured window.
    in_window: u64,
    /// Milliseconds each poll was sent after it was due.
    late_ms: Vec<u64>,
    reconnects: u64,
}

/// What the main task tells the pollers.
#[derive(Default)]
struct Phase {
    /// Devices skip polls that fall due meanwhile (the solo runs).
    paused: AtomicBool,
    /// Polls sent meanwhile count towards the achieved rate.
    measuring: AtomicBool,
    /// Devices send W2b's verify request instead of their poll (the cost windows'
    /// comparison: same connections, same schedule, another request).
    verify: AtomicBool,
    /// Requests the devices sent, polls or verifies.
    sent: AtomicU64,
    stop: AtomicBool,
}

pub async fn w6(args: &Args) -> Res<()> {
    let t = Target::from(args)?;
    let devices: usize = args.num("devices", 1000)?;
    let device_client = args.opt("device-client").unwrap_or("benchtv").to_owned();
    let db = args.get("db")?.to_owned();
    let metrics = args.opt("metrics").map(str::to_owned);
    let modes: Vec<String> = args
        .opt("modes")
        .unwrap_or("introspect,verify")
        .split(',')
        .map(str::to_owned)
        .collect();

    let mut conn = http::Conn::new(t.addr);
    let (access, _) = t.grant(&mut conn, false).await?;
    let w2: Vec<(&'static str, &'static str, Vec<u8>)> = modes
        .iter()
        .map(|m| w2_request(&t, m, &access))
        .collect::<Res<_>>()?;
    let verify = Arc::new(w2_request(&t, "verify", &access)?.2);

    // Device authorizations, up front (each one is a write).
    let authorize = t.form(
        "/oauth/device_authorization",
        &format!("client_id={}", http::form_encode(&device_client)),
        false,
    );
    let first = t.call(&mut conn, &authorize).await?;
    drop(conn);
    let first: Value = serde_json::from_slice(&first).map_err(|e| e.to_string())?;
    let interval = first["interval"].as_f64().ok_or("no interval")?;
    let mut codes = vec![first["device_code"]
        .as_str()
        .ok_or("no device_code")?
        .to_owned()];
    let registration = load::run(
        Config {
            name: "W6 device authorizations".into(),
            addr: t.addr,
            conns: args.num("conns", 16usize)?,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(120),
            max_requests: Some(devices.saturating_sub(1)),
            extract: Some("device_code"),
        },
        Plan::Repeat(vec![authorize]),
    )
    .await;
    summary(&registration);
    codes.extend(registration.extracted.iter().cloned());
    if codes.len() != devices {
        return Err(format!(
            "{} of {devices} device authorizations succeeded: {:?}",
            codes.len(),
            registration.first_error
        ));
    }

    // The writer truncates the WAL after 1 s without writes: let it, so the files are
    // at rest when the polling starts.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = Storage::read(&db, metrics.as_deref()).await;

    let phase = Arc::new(Phase::default());
    // A diagnostic: `--devices-send verify` makes the devices send W2b's request instead
    // of their poll (same connections and schedule), except in the cost windows.
    let devices_verify = args.opt("devices-send") == Some("verify");
    phase.verify.store(devices_verify, Ordering::Relaxed);
    let started = Instant::now();
    let mut pollers = Vec::with_capacity(devices);
    for (i, code) in codes.iter().enumerate() {
        let first_due = started + Duration::from_secs_f64(interval * i as f64 / devices as f64);
        let body = format!(
            "grant_type={}&device_code={}&client_id={}",
            http::form_encode(DEVICE_GRANT),
            http::form_encode(code),
            http::form_encode(&device_client)
        );
        let req = t.form("/oauth/token", &body, false);
        let (phase, addr, verify) = (Arc::clone(&phase), t.addr, Arc::clone(&verify));
        pollers.push(tokio::spawn(poll_device(
            addr, req, verify, first_due, interval, phase,
        )));
    }
    // Steady state: every device has polled once.
    sleep_until((started + Duration::from_secs_f64(interval + 0.5)).into()).await;
    let cost = match args.opt("pid") {
        Some(pid) if args.num("cost-windows", 1u32)? > 0 => {
            cost_windows(&phase, pid, interval, devices).await
        }
        _ => Value::Null,
    };

    phase.verify.store(devices_verify, Ordering::Relaxed);
    // Rounds of W2 solo (polls paused) and W2 while polling, alternating which comes
    // first, so a neighbour's load on a shared machine falls on both alike.
    let rounds: usize = args.num("rounds", 5)?;
    let phase_cfg = |name: String| -> Res<Config> {
        let mut c = cfg(args, &name, &t)?;
        c.warmup = args.secs("phase-warmup", 0.5)?;
        c.duration = args.secs("phase-secs", 3.0)?;
        Ok(c)
    };
    let mut solo: Vec<Vec<load::Outcome>> = w2.iter().map(|_| Vec::new()).collect();
    let mut during: Vec<Vec<load::Outcome>> = w2.iter().map(|_| Vec::new()).collect();
    let mut polling_s = 0.0;
    let mut cpu_solo: Vec<CpuSum> = w2.iter().map(|_| CpuSum::default()).collect();
    let mut cpu_polling: Vec<CpuSum> = w2.iter().map(|_| CpuSum::default()).collect();
    for round in 0..rounds {
        for (m, (_, name, req)) in w2.iter().enumerate() {
            for polling in [round % 2 == 1, round % 2 == 0] {
                phase.paused.store(!polling, Ordering::Relaxed);
                // Let polls already sent finish before a solo run.
                tokio::time::sleep(Duration::from_millis(200)).await;
                let label = match polling {
                    true => format!("W6 {name} with {devices} devices polling"),
                    false => format!("W6 {name} solo"),
                };
                let meter = CpuMeter::start(args);
                phase.measuring.store(polling, Ordering::Relaxed);
                let from = Instant::now();
                let o = load::run(phase_cfg(label)?, Plan::Repeat(vec![req.clone()])).await;
                phase.measuring.store(false, Ordering::Relaxed);
                summary(&o);
                let cpu = meter.json();
                if polling {
                    polling_s += from.elapsed().as_secs_f64();
                    cpu_polling[m].add(&cpu);
                    during[m].push(o);
                } else {
                    cpu_solo[m].add(&cpu);
                    solo[m].push(o);
                }
            }
        }
    }
    phase.stop.store(true, Ordering::Relaxed);
    phase.paused.store(true, Ordering::Relaxed);
    let mut tally = Tally::default();
    for p in pollers {
        if let Ok(one) = p.await {
            for (k, n) in one.answers {
                *tally.answers.entry(k).or_default() += n;
            }
            tally.in_window += one.in_window;
            tally.late_ms.extend(one.late_ms);
            tally.reconnects += one.reconnects;
        }
    }
    // Let any write the polls caused reach the files before looking.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = Storage::read(&db, metrics.as_deref()).await;

    let poll_rate = tally.in_window as f64 / polling_s.max(1e-9);
    let expected_rate = devices as f64 / interval;
    let late = late_hist(&tally.late_ms);
    eprintln!(
        "  W6 polls: {poll_rate:.1}/s achieved of {expected_rate:.1}/s due ({} devices every {interval} s); answers {:?}; late p99 {} ms",
        devices,
        tally.answers,
        late.value_at_quantile(0.99)
    );
    let mut ratios = serde_json::Map::new();
    let mut round_ratios = serde_json::Map::new();
    let mut w2_solo = serde_json::Map::new();
    let mut w2_during = serde_json::Map::new();
    let mut efficiency = serde_json::Map::new();
    for (m, (id, _, _)) in w2.iter().enumerate() {
        let (mut s, mut d) = (merged(&solo[m]), merged(&during[m]));
        // Requests per second of server CPU: what the polls cost the server, even when
        // other processes take CPU from it.
        let (per_cpu_solo, per_cpu_polling) = (
            cpu_solo[m].per_server_second(f(&s, "requests")),
            cpu_polling[m].per_server_second(f(&d, "requests")),
        );
        s["cpu"] = cpu_solo[m].json();
        d["cpu"] = cpu_polling[m].json();
        s["req_per_server_cpu_s"] = json!(load::round(per_cpu_solo, 1));
        d["req_per_server_cpu_s"] = json!(load::round(per_cpu_polling, 1));
        let eff = 100.0 * per_cpu_polling / per_cpu_solo.max(1e-9);
        efficiency.insert((*id).into(), json!(load::round(eff, 1)));
        let pct = 100.0 * f(&d, "req_per_s") / f(&s, "req_per_s").max(1e-9);
        let per_round: Vec<f64> = solo[m]
            .iter()
            .zip(&during[m])
            .map(|(s, d)| load::round(100.0 * d.rate() / s.rate().max(1e-9), 1))
            .collect();
        eprintln!("  W6 {id}: {pct:.1} % of solo while polling (rounds: {per_round:?}); per server CPU second {eff:.1} % of solo");
        ratios.insert((*id).into(), json!(load::round(pct, 1)));
        round_ratios.insert((*id).into(), json!(per_round));
        w2_solo.insert((*id).into(), s);
        w2_during.insert((*id).into(), d);
    }
    let writes = match (before.writer_jobs, after.writer_jobs) {
        (Some(b), Some(a)) => json!(a - b),
        _ => Value::Null,
    };
    eprintln!(
        "  W6 storage: writer jobs committed during polling {writes}; db {} -> {} bytes, wal {} -> {} bytes ({})",
        before.db_bytes,
        after.db_bytes,
        before.wal_bytes,
        after.wal_bytes,
        if before.wal_modified == after.wal_modified { "not modified" } else { "modified" }
    );
    emit(
        args,
        json!({
            "workload": "W6",
            "devices": devices,
            "interval_s": interval,
            "rounds": rounds,
            "w2_polling_pct_of_solo": ratios,
            "w2_polling_pct_of_solo_per_round": round_ratios,
            "w2_polling_per_server_cpu_pct_of_solo": efficiency,
            "polls_per_s_due": load::round(expected_rate, 1),
            "polls_per_s_achieved": load::round(poll_rate, 1),
            "polls_in_window": tally.in_window,
            "poll_window_s": load::round(polling_s, 2),
            "poll_answers": tally.answers,
            "poll_reconnects": tally.reconnects,
            "poll_late_ms": {"p50": late.value_at_quantile(0.5), "p99": late.value_at_quantile(0.99), "max": late.max()},
            "writer_jobs_during_polling": writes,
            "storage_before": before.to_json(),
            "storage_after": after.to_json(),
            "registration": registration.to_json(),
            "w2_solo": w2_solo,
            "w2_polling": w2_during,
            "cost": cost,
        }),
    )
}

/// The runs of one kind taken together: their rate, latency quantiles and errors.
fn merged(runs: &[load::Outcome]) -> Value {
    let mut hist = Histogram::<u64>::new(3).unwrap_or_else(|_| unreachable!());
    let (mut requests, mut seconds, mut errors) = (0, 0.0, 0);
    for o in runs {
        let _ = hist.add(&o.hist);
        requests += o.measured;
        seconds += o.seconds;
        errors += o.errors;
    }
    let q = |v: f64| load::round(hist.value_at_quantile(v) as f64 / 1000.0, 3);
    json!({
        "runs": runs.len(),
        "connections": runs.first().map_or(0, |o| o.conns),
        "requests": requests,
        "seconds": load::round(seconds, 3),
        "req_per_s": load::round(requests as f64 / seconds.max(1e-9), 1),
        "p50_ms": q(0.5),
        "p99_ms": q(0.99),
        "errors": errors,
        "first_error": runs.iter().find_map(|o| o.first_error.clone()),
    })
}

/// CPU used over several measured runs: cores busy on average, weighted by wall time.
#[derive(Default)]
struct CpuSum {
    wall: f64,
    server: f64,
    generator: f64,
}

impl CpuSum {
    fn add(&mut self, cpu: &Value) {
        let wall = f(cpu, "wall_s");
        self.wall += wall;
        self.server += wall * f(cpu, "server_cores");
        self.generator += wall * f(cpu, "generator_cores");
    }
    /// `requests` per second of server CPU time.
    fn per_server_second(&self, requests: f64) -> f64 {
        requests / self.server.max(1e-9)
    }
    fn json(&self) -> Value {
        let w = self.wall.max(1e-9);
        json!({
            "wall_s": load::round(self.wall, 2),
            "server_cores": load::round(self.server / w, 2),
            "generator_cores": load::round(self.generator / w, 2),
        })
    }
}

/// One device: polls when due until `stop` (skipping polls due while paused), on its
/// own keep-alive connection.
async fn poll_device(
    addr: std::net::SocketAddr,
    req: Vec<u8>,
    verify: Arc<Vec<u8>>,
    first_due: Instant,
    interval: f64,
    phase: Arc<Phase>,
) -> Tally {
    let mut tally = Tally::default();
    let mut conn = http::Conn::new(addr);
    let mut due = first_due;
    let mut interval = interval;
    while !phase.stop.load(Ordering::Relaxed) {
        sleep_until(due.into()).await;
        if phase.stop.load(Ordering::Relaxed) {
            break;
        }
        if phase.paused.load(Ordering::Relaxed) {
            due += Duration::from_secs_f64(interval);
            continue;
        }
        let sent = Instant::now();
        tally.late_ms.push(
            u64::try_from(sent.saturating_duration_since(due).as_millis()).unwrap_or(u64::MAX),
        );
        phase.sent.fetch_add(1, Ordering::Relaxed);
        if phase.verify.load(Ordering::Relaxed) {
            // A cost window's comparison request: not a poll, so not tallied as one.
            if conn.send(&verify).await.is_err() {
                tally.reconnects += 1;
            }
            due += Duration::from_secs_f64(interval);
            continue;
        }
        if phase.measuring.load(Ordering::Relaxed) {
            tally.in_window += 1;
        }
        let mut answer = conn.send(&req).await.map(|r| (r.status, error_of(r.body)));
        if answer.is_err() {
            // The server may have closed the idle connection: one fresh try.
            tally.reconnects += 1;
            answer = conn.send(&req).await.map(|r| (r.status, error_of(r.body)));
        }
        let key = match answer {
            Ok((_, Some(error))) => error,
            Ok((status, None)) => format!("HTTP {status}"),
            Err(_) => "io".to_owned(),
        };
        if key == "slow_down" {
            interval += SLOW_DOWN_SECS;
        }
        *tally.answers.entry(key).or_default() += 1;
        due += Duration::from_secs_f64(interval);
    }
    tally
}

/// What a poll costs the server, measured without W2 load: one interval idle (polls
/// paused), one interval of polls, and one interval in which the same devices send W2b's
/// verify request on the same schedule instead, so the two requests are compared over the
/// same connections and timers. Each figure is beyond the idle window's rate.
async fn cost_windows(phase: &Phase, pid: &str, interval: f64, devices: usize) -> Value {
    let window = Duration::from_secs_f64(interval);
    let measure = |paused: bool, verify: bool| async move {
        phase.paused.store(paused, Ordering::Relaxed);
        phase.verify.store(verify, Ordering::Relaxed);
        // Let requests already sent finish.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sent = phase.sent.load(Ordering::Relaxed);
        let w = Window::start(pid);
        tokio::time::sleep(window).await;
        let used = w.end();
        (used, phase.sent.load(Ordering::Relaxed) - sent)
    };
    let (idle, _) = measure(true, false).await;
    let (polls, n_polls) = measure(false, false).await;
    let (verifies, n_verifies) = measure(false, true).await;
    phase.verify.store(false, Ordering::Relaxed);
    let (poll, verify) = (
        polls.per_request(n_polls, &idle),
        verifies.per_request(n_verifies, &idle),
    );
    eprintln!(
        "  W6 cost ({devices} devices, no W2 load): server CPU per poll {} µs ({} µs by ticks), per verify {} µs ({}); context switches per poll {}, per verify {}; generator CPU per poll {} µs, per verify {} µs; idle server {:.1} ms CPU/s",
        poll["server_cpu_us"],
        poll["server_cpu_us_ticks"],
        verify["server_cpu_us"],
        verify["server_cpu_us_ticks"],
        poll["server_switches"],
        verify["server_switches"],
        poll["generator_cpu_us"],
        verify["generator_cpu_us"],
        1000.0 * idle.server_run_s / idle.wall_s.max(1e-9),
    );
    json!({
        "idle": idle.json(),
        "poll": poll,
        "verify_same_schedule": verify,
        "windows": {"polls": polls.json(), "verifies": verifies.json()},
    })
}

/// The `error` member of an OAuth error answer.
fn error_of(body: &[u8]) -> Option<String> {
    http::json_str(body, "error").map(str::to_owned)
}

fn late_hist(values: &[u64]) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new(3).unwrap_or_else(|_| unreachable!());
    for v in values {
        let _ = h.record(*v);
    }
    h
}

/// The database's files and the writer's counter at one moment.
struct Storage {
    db_bytes: u64,
    wal_bytes: u64,
    wal_modified: Option<SystemTime>,
    /// `oauthd_writer_batch_jobs_sum`: write jobs committed since start.
    writer_jobs: Option<i64>,
}

impl Storage {
    async fn read(db: &str, metrics: Option<&str>) -> Storage {
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let wal = format!("{db}-wal");
        Storage {
            db_bytes: size(Path::new(db)),
            wal_bytes: size(Path::new(&wal)),
            wal_modified: std::fs::metadata(&wal).and_then(|m| m.modified()).ok(),
            writer_jobs: match metrics {
                Some(m) => writer_jobs(m).await,
                None => None,
            },
        }
    }

    fn to_json(&self) -> Value {
        let since_epoch = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| load::round(d.as_secs_f64(), 3))
                .ok()
        };
        json!({
            "db_bytes": self.db_bytes,
            "wal_bytes": self.wal_bytes,
            "wal_modified_unix": self.wal_modified.and_then(since_epoch),
            "writer_jobs_committed": self.writer_jobs,
        })
    }
}

/// Scrapes the metrics listener for the writer's committed-job count.
async fn writer_jobs(metrics: &str) -> Option<i64> {
    let addr = metrics.parse().ok()?;
    let mut conn = http::Conn::new(addr);
    let req = http::request("GET", "/metrics", metrics, &[], None);
    let r = conn.send(&req).await.ok()?;
    let text = String::from_utf8_lossy(r.body);
    let line = text
        .lines()
        .find(|l| l.starts_with("oauthd_writer_batch_jobs_sum "))?;
    line.split_whitespace()
        .nth(1)?
        .parse::<f64>()
        .ok()
        .map(|v| v as i64)
}

/// The table rows of a W6 record: W2 while polling (per mode) and the polls themselves.
pub fn rows(r: &Value) -> Vec<Row> {
    let mut rows = Vec::new();
    let polling = r["w2_polling"].as_object().cloned().unwrap_or_default();
    for (id, during) in &polling {
        let solo = &r["w2_solo"][id];
        let pct = f(&r["w2_polling_pct_of_solo"], id);
        rows.push(Row {
            workload: format!("W6 {id} while {} devices poll", r["devices"]),
            value: format!("{:.0} req/s", f(during, "req_per_s")),
            p50: ms(f(during, "p50_ms")),
            p99: ms(f(during, "p99_ms")),
            errors: during["errors"].to_string(),
            target: format!("≥ 90% of {id} solo"),
            met: Some(pct >= 90.0),
            notes: format!(
                "{pct:.1}% of solo {:.0} req/s (solo p99 {:.2} ms), c={}; rounds (%): {}; per server CPU second: {:.1}% of solo; server cores {:.2} solo, {:.2} polling",
                f(solo, "req_per_s"),
                f(solo, "p99_ms"),
                during["connections"],
                r["w2_polling_pct_of_solo_per_round"][id],
                f(&r["w2_polling_per_server_cpu_pct_of_solo"], id),
                f(&solo["cpu"], "server_cores"),
                f(&during["cpu"], "server_cores")
            ),
        });
    }
    let answers = &r["poll_answers"];
    let only_pending = answers
        .as_object()
        .is_some_and(|a| a.keys().all(|k| k == "authorization_pending"));
    let (before, after) = (&r["storage_before"], &r["storage_after"]);
    let untouched = r["writer_jobs_during_polling"] == json!(0)
        && before["db_bytes"] == after["db_bytes"]
        && before["wal_bytes"] == after["wal_bytes"]
        && before["wal_modified_unix"] == after["wal_modified_unix"];
    rows.push(Row {
        workload: "W6 device polls (pending)".into(),
        value: format!("{:.1} polls/s", f(r, "polls_per_s_achieved")),
        p50: format!("late {} ms", r["poll_late_ms"]["p50"]),
        p99: format!("late {} ms", r["poll_late_ms"]["p99"]),
        errors: r["poll_reconnects"].to_string(),
        target: "due rate, no write".into(),
        met: Some(only_pending && untouched && f(r, "polls_per_s_achieved") >= 0.95 * f(r, "polls_per_s_due")),
        notes: format!(
            "due {:.1}/s ({} devices every {} s); answers {answers}; writer jobs committed while polling: {}; db {} → {} bytes, WAL {} → {} bytes, WAL {}; errors column = reconnects",
            f(r, "polls_per_s_due"),
            r["devices"],
            r["interval_s"],
            r["writer_jobs_during_polling"],
            before["db_bytes"],
            after["db_bytes"],
            before["wal_bytes"],
            after["wal_bytes"],
            if before["wal_modified_unix"] == after["wal_modified_unix"] { "not modified" } else { "modified" }
        ),
    });
    rows
}
