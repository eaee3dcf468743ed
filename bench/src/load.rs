//! The load engine: N keep-alive connections on one thread, each sending requests back to
//! back (closed loop). Requests are pre-built bytes; the only per-request work is a clock
//! read, a write, a read and a histogram record.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::http::{self, Conn};

/// What each connection sends.
pub enum Plan {
    /// Connection i repeats `reqs[i % len]`.
    Repeat(Vec<Vec<u8>>),
    /// Every request once, shared by all connections; the run ends when they run out.
    Queue(Vec<Vec<u8>>),
    /// Connection i starts with `starts[i % len]`; after each 2xx answer the JSON string
    /// `key` of the answer replaces the bytes at `[at, at + len)` (refresh-token rotation:
    /// each request uses the token the previous answer returned, so no token is used twice).
    Chain {
        starts: Vec<Vec<u8>>,
        at: usize,
        len: usize,
        key: &'static str,
    },
}

pub struct Config {
    pub name: String,
    pub addr: SocketAddr,
    pub conns: usize,
    pub warmup: Duration,
    /// Measured time after the warm-up (an upper bound for Queue plans).
    pub duration: Duration,
    /// Stop after this many requests in all (warm-up included), if set.
    pub max_requests: Option<usize>,
    /// Collect this JSON string member of every 2xx answer (e.g. minted codes).
    pub extract: Option<&'static str>,
}

pub struct Outcome {
    pub name: String,
    pub conns: usize,
    pub measured: u64,
    pub warmup_requests: u64,
    pub errors: u64,
    pub io_errors: u64,
    pub statuses: Vec<(u16, u64)>,
    pub first_error: Option<String>,
    pub seconds: f64,
    pub hist: Histogram<u64>,
    pub extracted: Vec<String>,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        if self.seconds > 0.0 {
            self.measured as f64 / self.seconds
        } else {
            0.0
        }
    }

    fn ms(&self, q: f64) -> f64 {
        if self.hist.is_empty() {
            return 0.0;
        }
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "connections": self.conns,
            "requests": self.measured,
            "warmup_requests": self.warmup_requests,
            "seconds": round(self.seconds, 3),
            "req_per_s": round(self.rate(), 1),
            "p50_ms": round(self.ms(0.50), 3),
            "p90_ms": round(self.ms(0.90), 3),
            "p99_ms": round(self.ms(0.99), 3),
            "max_ms": round(if self.hist.is_empty() { 0.0 } else { self.hist.max() as f64 / 1000.0 }, 3),
            "mean_ms": round(self.hist.mean() / 1000.0, 3),
            "errors": self.errors,
            "io_errors": self.io_errors,
            "statuses": self.statuses.iter().map(|(s, n)| (s.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "first_error": self.first_error,
        })
    }
}

pub fn round(v: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (v * f).round() / f
}

struct Shared {
    plan: Plan,
    next: AtomicUsize,
    issued: AtomicUsize,
    max_requests: usize,
    extract: Option<&'static str>,
    start: Instant,
    measure_from: Instant,
    deadline: Instant,
}

struct ConnResult {
    hist: Histogram<u64>,
    measured: u64,
    warmup: u64,
    errors: u64,
    io_errors: u64,
    statuses: Vec<(u16, u64)>,
    first_error: Option<String>,
    last_done: Option<Instant>,
    extracted: Vec<String>,
}

pub async fn run(cfg: Config, plan: Plan) -> Outcome {
    let start = Instant::now();
    let shared = Arc::new(Shared {
        plan,
        next: AtomicUsize::new(0),
        issued: AtomicUsize::new(0),
        max_requests: cfg.max_requests.unwrap_or(usize::MAX),
        extract: cfg.extract,
        start,
        measure_from: start + cfg.warmup,
        deadline: start + cfg.warmup + cfg.duration,
    });
    let results = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..cfg.conns {
        let shared = Arc::clone(&shared);
        let results = Arc::clone(&results);
        let addr = cfg.addr;
        tasks.push(tokio::spawn(async move {
            let r = connection(i, addr, &shared).await;
            if let Ok(mut v) = results.lock() {
                v.push(r);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let results = std::mem::take(&mut *results.lock().unwrap_or_else(|p| p.into_inner()));
    let mut out = Outcome {
        name: cfg.name,
        conns: cfg.conns,
        measured: 0,
        warmup_requests: 0,
        errors: 0,
        io_errors: 0,
        statuses: Vec::new(),
        first_error: None,
        seconds: 0.0,
        hist: new_hist(),
        extracted: Vec::new(),
    };
    let mut last = None::<Instant>;
    for r in results {
        let _ = out.hist.add(&r.hist);
        out.measured += r.measured;
        out.warmup_requests += r.warmup;
        out.errors += r.errors;
        out.io_errors += r.io_errors;
        for (s, n) in r.statuses {
            add_status(&mut out.statuses, s, n);
        }
        if out.first_error.is_none() {
            out.first_error = r.first_error;
        }
        if let Some(t) = r.last_done {
            last = Some(last.map_or(t, |l: Instant| l.max(t)));
        }
        out.extracted.extend(r.extracted);
    }
    out.statuses.sort();
    let from = shared.measure_from.max(shared.start);
    out.seconds = last
        .map(|l| l.saturating_duration_since(from).as_secs_f64())
        .unwrap_or(0.0);
    out
}

fn new_hist() -> Histogram<u64> {
    // Microseconds, 1 µs .. 10 min, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

fn add_status(v: &mut Vec<(u16, u64)>, status: u16, n: u64) {
    match v.iter_mut().find(|(s, _)| *s == status) {
        Some(e) => e.1 += n,
        None => v.push((status, n)),
    }
}

async fn connection(i: usize, addr: SocketAddr, sh: &Shared) -> ConnResult {
    let mut r = ConnResult {
        hist: new_hist(),
        measured: 0,
        warmup: 0,
        errors: 0,
        io_errors: 0,
        statuses: Vec::new(),
        first_error: None,
        last_done: None,
        extracted: Vec::new(),
    };
    let mut conn = Conn::new(addr);
    // Chain plans own a mutable copy of their request.
    let mut chained: Option<Vec<u8>> = match &sh.plan {
        Plan::Chain { starts, .. } if !starts.is_empty() => Some(starts[i % starts.len()].clone()),
        _ => None,
    };
    loop {
        let now = Instant::now();
        if now >= sh.deadline {
            break;
        }
        if sh.issued.fetch_add(1, Ordering::Relaxed) >= sh.max_requests {
            break;
        }
        let request: &[u8] = match &sh.plan {
            Plan::Repeat(reqs) => {
                if reqs.is_empty() {
                    break;
                }
                &reqs[i % reqs.len()]
            }
            Plan::Queue(reqs) => {
                let n = sh.next.fetch_add(1, Ordering::Relaxed);
                match reqs.get(n) {
                    Some(req) => req,
                    None => break,
                }
            }
            Plan::Chain { .. } => match &chained {
                Some(req) => req,
                None => break,
            },
        };
        let t0 = Instant::now();
        let answer = conn.send(request).await;
        let done = Instant::now();
        let measuring = t0 >= sh.measure_from;
        match answer {
            Ok(resp) => {
                let ok = (200..300).contains(&resp.status);
                add_status(&mut r.statuses, resp.status, 1);
                if measuring {
                    let _ = r.hist.record((done - t0).as_micros().max(1) as u64);
                    r.measured += 1;
                    r.last_done = Some(done);
                } else {
                    r.warmup += 1;
                }
                if !ok {
                    if measuring {
                        r.errors += 1;
                    }
                    if r.first_error.is_none() {
                        r.first_error = Some(format!(
                            "HTTP {}: {}",
                            resp.status,
                            String::from_utf8_lossy(&resp.body[..resp.body.len().min(200)])
                        ));
                    }
                }
                if ok {
                    if let Some(key) = sh.extract {
                        if let Some(v) = http::json_str(resp.body, key) {
                            r.extracted.push(v.to_owned());
                        }
                    }
                }
                if let Plan::Chain { at, len, key, .. } = &sh.plan {
                    let next = if ok {
                        http::json_str(resp.body, key).map(str::as_bytes)
                    } else {
                        None
                    };
                    match (next, chained.as_mut()) {
                        (Some(tok), Some(req)) if tok.len() == *len => {
                            req[*at..*at + *len].copy_from_slice(tok);
                        }
                        _ => {
                            // The chain is broken (error or unexpected token): this
                            // connection stops rather than reuse a spent token.
                            chained = None;
                        }
                    }
                }
            }
            Err(e) => {
                r.io_errors += 1;
                if measuring {
                    r.errors += 1;
                }
                if r.first_error.is_none() {
                    r.first_error = Some(format!("I/O: {e}"));
                }
                // Give a failing server a moment rather than spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    r
}
