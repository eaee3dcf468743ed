//! oauthd-bench: the load generator and report of oauthd's benchmark suite. `bench/run.sh`
//! starts and seeds the servers and calls one subcommand per workload; each appends one
//! JSON line to `--out`. `report` turns those lines into the table and `latest.json`.
//!
//! Subcommands: w1, w2, w3, w5, w6, startup, report, selfsigned (see bench/README.md).
//! With `--tls-ca FILE` every connection speaks TLS and records are named `<id>-tls`; with
//! `--store-suffix -pg` (run.sh's PostgreSQL rows) they are named `<id>-pg`.

mod devices;
mod http;
mod load;
mod proc_meter;
mod report;
mod tls;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use load::{Config, Plan};

type Res<T> = Result<T, String>;

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = argv.first().cloned() else {
        eprintln!("usage: oauthd-bench w1|w2|w3|w5|w6|startup|report|selfsigned --key value ... [--tls-ca FILE]");
        std::process::exit(2);
    };
    let args = match Args::parse(&argv[1..]) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("oauthd-bench: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = tls::init(&args) {
        eprintln!("oauthd-bench: {e}");
        std::process::exit(2);
    }
    let result = match cmd.as_str() {
        "w1" => with_runtime(w1(&args)),
        "w2" => with_runtime(w2(&args)),
        "w3" => with_runtime(w3(&args)),
        "w5" => with_runtime(w5(&args)),
        "w6" => with_runtime(devices::w6(&args)),
        "startup" => startup(&args),
        "report" => report::report(&args),
        "selfsigned" => tls::selfsigned(&args),
        other => Err(format!("unknown subcommand {other}")),
    };
    if let Err(e) = result {
        eprintln!("oauthd-bench {cmd}: {e}");
        std::process::exit(1);
    }
}

/// The generator runs on ONE thread: on a 2-core machine it shares the CPU with the
/// server, and one thread is enough for tens of thousands of requests per second.
fn with_runtime(fut: impl std::future::Future<Output = Res<()>>) -> Res<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(fut)
}

pub struct Args(HashMap<String, String>);

impl Args {
    fn parse(v: &[String]) -> Res<Args> {
        let mut map = HashMap::new();
        let mut it = v.iter();
        while let Some(k) = it.next() {
            let key = k
                .strip_prefix("--")
                .ok_or_else(|| format!("expected --key, got {k}"))?;
            let val = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
            map.insert(key.to_owned(), val.clone());
        }
        Ok(Args(map))
    }
    pub fn get(&self, k: &str) -> Res<&str> {
        self.0
            .get(k)
            .map(String::as_str)
            .ok_or_else(|| format!("--{k} is required"))
    }
    pub fn opt(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }
    fn num<T: std::str::FromStr>(&self, k: &str, default: T) -> Res<T> {
        match self.0.get(k) {
            Some(v) => v.parse().map_err(|_| format!("--{k}: not a number: {v}")),
            None => Ok(default),
        }
    }
    fn secs(&self, k: &str, default: f64) -> Res<Duration> {
        Ok(Duration::from_secs_f64(self.num(k, default)?))
    }
    fn addr(&self) -> Res<SocketAddr> {
        let a = self.get("addr")?;
        a.parse().map_err(|_| format!("--addr: bad address {a}"))
    }
}

/// Everything a workload needs to talk to the seeded server.
struct Target {
    addr: SocketAddr,
    host: String,
    email: String,
    password: String,
    client_id: String,
    public_id: String,
    redirect: String,
    basic: String,
}

impl Target {
    fn from(args: &Args) -> Res<Target> {
        let addr = args.addr()?;
        let client_id = args.opt("client-id").unwrap_or("bench").to_owned();
        let secret = args.opt("secret").unwrap_or("").to_owned();
        let raw = format!(
            "{}:{}",
            http::form_encode(&client_id),
            http::form_encode(&secret)
        );
        Ok(Target {
            addr,
            host: addr.to_string(),
            email: args.get("email")?.to_owned(),
            password: args.get("password")?.to_owned(),
            client_id,
            public_id: args.opt("public-id").unwrap_or("benchpub").to_owned(),
            redirect: args.opt("redirect").unwrap_or("http://127.0.0.1/cb").to_owned(),
            basic: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            ),
        })
    }

    fn login_request(&self, client_id: &str) -> Vec<u8> {
        let body = format!(
            "{{\"email\":{},\"password\":{},\"response_type\":\"code\",\"client_id\":{},\"redirect_uri\":{},\"state\":\"bench\"}}",
            http::json_lit(&self.email),
            http::json_lit(&self.password),
            http::json_lit(client_id),
            http::json_lit(&self.redirect)
        );
        http::request(
            "POST",
            "/api/oauth_login",
            &self.host,
            &[],
            Some(("application/json", body.as_bytes())),
        )
    }

    fn form(&self, path: &str, body: &str, basic: bool) -> Vec<u8> {
        let auth = [("Authorization", self.basic.as_str())];
        http::request(
            "POST",
            path,
            &self.host,
            if basic { &auth } else { &[] },
            Some(("application/x-www-form-urlencoded", body.as_bytes())),
        )
    }

    fn exchange_request(&self, code: &str) -> Vec<u8> {
        self.form(
            "/api/oauth_access_token",
            &format!(
                "grant_type=authorization_code&code={}&redirect_uri={}",
                http::form_encode(code),
                http::form_encode(&self.redirect)
            ),
            true,
        )
    }

    fn public_exchange_request(&self, code: &str) -> Vec<u8> {
        self.form(
            "/api/oauth_access_token",
            &format!(
                "grant_type=authorization_code&code={}&redirect_uri={}&client_id={}",
                http::form_encode(code),
                http::form_encode(&self.redirect),
                http::form_encode(&self.public_id)
            ),
            false,
        )
    }

    /// One request outside any measurement; a non-2xx answer is an error.
    async fn call(&self, conn: &mut http::Conn, req: &[u8]) -> Res<Vec<u8>> {
        let r = conn.send(req).await.map_err(|e| format!("setup I/O: {e}"))?;
        if !(200..300).contains(&r.status) {
            return Err(format!(
                "setup request failed: HTTP {}: {}",
                r.status,
                String::from_utf8_lossy(r.body)
            ));
        }
        Ok(r.body.to_vec())
    }

    /// Logs in and exchanges the code: (access_token, refresh_token).
    async fn grant(&self, conn: &mut http::Conn, public: bool) -> Res<(String, String)> {
        let client = if public { &self.public_id } else { &self.client_id };
        let body = self.call(conn, &self.login_request(client)).await?;
        let code = http::json_str(&body, "oauthCode").ok_or("no oauthCode")?;
        let req = if public {
            self.public_exchange_request(code)
        } else {
            self.exchange_request(code)
        };
        let body = self.call(conn, &req).await?;
        let access = http::json_str(&body, "access_token").ok_or("no access_token")?;
        let refresh = http::json_str(&body, "refresh_token").ok_or("no refresh_token")?;
        Ok((access.to_owned(), refresh.to_owned()))
    }
}

fn cfg(args: &Args, name: &str, t: &Target) -> Res<Config> {
    Ok(Config {
        name: name.to_owned(),
        addr: t.addr,
        conns: args.num("conns", 16usize)?,
        warmup: args.secs("warmup", 2.0)?,
        duration: args.secs("duration", 10.0)?,
        max_requests: None,
        extract: None,
    })
}

/// VmRSS / VmHWM of the server, in KiB.
fn mem(pid: Option<&str>) -> Value {
    let Some(pid) = pid else { return Value::Null };
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Value::Null;
    };
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    json!({"rss_kb": field("VmRSS:"), "hwm_kb": field("VmHWM:")})
}

/// CPU seconds (user + system) used so far by `pid` ("self" for the generator).
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// CPU used by the generator and the server during a measured run.
struct CpuMeter {
    pid: Option<String>,
    at: Instant,
    gen: Option<f64>,
    server: Option<f64>,
}

impl CpuMeter {
    /// Also creates the `--mark` file, if given: the measured load starts now (run.sh
    /// starts `perf record` on it, so setup such as W1's minting is not profiled).
    fn start(args: &Args) -> CpuMeter {
        if let Some(mark) = args.opt("mark") {
            let _ = std::fs::write(mark, b"");
        }
        let pid = args.opt("pid").map(str::to_owned);
        CpuMeter {
            gen: cpu_seconds("self"),
            server: pid.as_deref().and_then(cpu_seconds),
            pid,
            at: Instant::now(),
        }
    }
    /// Cores busy on average (1.0 = one core) for each side since `start`.
    fn json(&self) -> Value {
        let wall = self.at.elapsed().as_secs_f64();
        let cores = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if wall > 0.0 => json!(load::round((b - a) / wall, 2)),
            _ => Value::Null,
        };
        json!({
            "wall_s": load::round(wall, 2),
            "generator_cores": cores(self.gen, cpu_seconds("self")),
            "server_cores": cores(self.server, self.pid.as_deref().and_then(cpu_seconds)),
        })
    }
}

fn emit(args: &Args, mut record: Value) -> Res<()> {
    if let Value::Object(m) = &mut record {
        m.insert("memory_end".into(), mem(args.opt("pid")));
        if let (true, Some(Value::String(id))) = (tls::enabled(), m.get_mut("workload")) {
            id.push_str("-tls");
        }
        // `--store-suffix -pg` (or `-pg2`): the row of a server on PostgreSQL.
        if let (Some(suffix), Some(Value::String(id))) = (args.opt("store-suffix"), m.get_mut("workload")) {
            id.push_str(suffix);
        }
    }
    let line = record.to_string();
    println!("{line}");
    if let Some(path) = args.opt("out") {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("{path}: {e}"))?;
        writeln!(f, "{line}").map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn summary(o: &load::Outcome) {
    eprintln!(
        "  {:<28} {:>9.1} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  errors {}{}",
        o.name,
        o.rate(),
        o.hist.value_at_quantile(0.5) as f64 / 1000.0,
        o.hist.value_at_quantile(0.99) as f64 / 1000.0,
        o.errors,
        o.first_error
            .as_deref()
            .map(|e| format!("  (first: {e})"))
            .unwrap_or_default()
    );
}

/// W1: mint codes through /api/oauth_login, then exchange each exactly once.
async fn w1(args: &Args) -> Res<()> {
    let t = Target::from(args)?;
    let memory_start = mem(args.opt("pid"));
    let want: usize = args.num("codes", 20_000)?;
    let mint = load::run(
        Config {
            name: "W1 mint codes (login)".into(),
            addr: t.addr,
            conns: args.num("conns", 16usize)?,
            warmup: Duration::ZERO,
            duration: args.secs("mint-secs", 90.0)?,
            max_requests: Some(want),
            extract: Some("oauthCode"),
        },
        Plan::Repeat(vec![t.login_request(&t.client_id)]),
    )
    .await;
    summary(&mint);
    let codes = mint.extracted.clone();
    if codes.is_empty() {
        return Err(format!("no code minted: {:?}", mint.first_error));
    }
    let reqs: Vec<Vec<u8>> = codes.iter().map(|c| t.exchange_request(c)).collect();
    let mut c = cfg(args, "W1 code exchange", &t)?;
    c.warmup = args.secs("warmup", 1.0)?;
    c.duration = args.secs("max-secs", 90.0)?;
    let meter = CpuMeter::start(args);
    let o = load::run(c, Plan::Queue(reqs)).await;
    let cpu = meter.json();
    summary(&o);
    let used = o.measured + o.warmup_requests;
    emit(
        args,
        json!({
            "workload": "W1",
            "result": o.to_json(),
            "codes_minted": codes.len(),
            "codes_used": used,
            "mint": mint.to_json(),
            "cpu": cpu,
            "memory_start": memory_start,
        }),
    )
}

/// W2: (a) introspection, (b) forward-auth verification, of one valid access token.
async fn w2(args: &Args) -> Res<()> {
    let t = Target::from(args)?;
    let mode = args.get("mode")?;
    let memory_start = mem(args.opt("pid"));
    let mut conn = http::Conn::new(t.addr);
    let (access, _) = t.grant(&mut conn, false).await?;
    drop(conn);
    let (id, name, req) = w2_request(&t, mode, &access)?;
    let meter = CpuMeter::start(args);
    let o = load::run(cfg(args, name, &t)?, Plan::Repeat(vec![req])).await;
    let cpu = meter.json();
    summary(&o);
    emit(
        args,
        json!({"workload": id, "result": o.to_json(), "cpu": cpu, "memory_start": memory_start}),
    )
}

fn w2_request(t: &Target, mode: &str, access: &str) -> Res<(&'static str, &'static str, Vec<u8>)> {
    Ok(match mode {
        "introspect" => (
            "W2a",
            "W2a introspect",
            t.form(
                "/oauth/introspect",
                &format!("token={}", http::form_encode(access)),
                true,
            ),
        ),
        "verify" => (
            "W2b",
            "W2b verify (Bearer)",
            http::request(
                "GET",
                "/api/auth/verify",
                &t.host,
                &[("Authorization", &format!("Bearer {access}"))],
                None,
            ),
        ),
        m => return Err(format!("--mode {m}: introspect or verify")),
    })
}

/// W3: refresh grants. (a) confidential client, the refresh token is kept (one grant per
/// connection, reused); (b) public client, rotating: every request uses the token the
/// previous answer returned, so no refresh token is presented twice.
async fn w3(args: &Args) -> Res<()> {
    let t = Target::from(args)?;
    let mode = args.get("mode")?;
    let memory_start = mem(args.opt("pid"));
    let conns: usize = args.num("conns", 16usize)?;
    let mut conn = http::Conn::new(t.addr);
    let public = match mode {
        "confidential" => false,
        "public" => true,
        m => return Err(format!("--mode {m}: confidential or public")),
    };
    let mut reqs = Vec::new();
    let mut token_at = 0;
    let mut token_len = 0;
    for _ in 0..conns {
        let (_, refresh) = t.grant(&mut conn, public).await?;
        let req = if public {
            let body = format!(
                "grant_type=refresh_token&client_id={}&refresh_token={}",
                http::form_encode(&t.public_id),
                refresh
            );
            t.form("/api/oauth_access_token", &body, false)
        } else {
            let body = format!("grant_type=refresh_token&refresh_token={}", http::form_encode(&refresh));
            t.form("/api/oauth_access_token", &body, true)
        };
        // The token is the tail of the request.
        token_len = refresh.len();
        token_at = req.len() - token_len;
        reqs.push(req);
    }
    drop(conn);
    let (id, name, plan) = if public {
        (
            "W3b",
            "W3b refresh public (rotating)",
            Plan::Chain {
                starts: reqs,
                at: token_at,
                len: token_len,
                key: "refresh_token",
            },
        )
    } else {
        ("W3a", "W3a refresh confidential", Plan::Repeat(reqs))
    };
    let meter = CpuMeter::start(args);
    let o = load::run(cfg(args, name, &t)?, plan).await;
    let cpu = meter.json();
    summary(&o);
    emit(
        args,
        json!({"workload": id, "result": o.to_json(), "cpu": cpu, "grants": conns, "memory_start": memory_start}),
    )
}

/// Median time of one PBKDF2-HMAC-SHA256 hash at `iterations`, in this process.
fn pbkdf2_seconds(iterations: u32, runs: usize) -> f64 {
    let mut times: Vec<f64> = (0..runs)
        .map(|i| {
            let salt = [i as u8; 16];
            let mut out = [0u8; 32];
            let t0 = Instant::now();
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(b"correct horse battery staple", &salt, iterations, &mut out);
            let dt = t0.elapsed().as_secs_f64();
            std::hint::black_box(out);
            dt
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// W5: a login storm at the default PBKDF2 cost while W2(b) runs beside it.
async fn w5(args: &Args) -> Res<()> {
    let t = Target::from(args)?;
    let memory_start = mem(args.opt("pid"));
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let iterations: u32 = args.num("iterations", 600_000)?;
    let hash_s = pbkdf2_seconds(iterations, args.num("hash-runs", 5usize)?);
    let limit = cores as f64 / hash_s;
    eprintln!("  PBKDF2 {iterations} iterations: {:.1} ms/hash, limit {limit:.2} logins/s on {cores} cores", hash_s * 1000.0);

    let mut conn = http::Conn::new(t.addr);
    let (access, _) = t.grant(&mut conn, false).await?;
    drop(conn);
    let (_, _, verify) = w2_request(&t, "verify", &access)?;

    let solo = load::run(cfg(args, "W5 W2b solo", &t)?, Plan::Repeat(vec![verify.clone()])).await;
    summary(&solo);

    let login_conns = args.num("login-conns", 2 * cores)?;
    let mut login_cfg = cfg(args, "W5 logins (600k)", &t)?;
    login_cfg.conns = login_conns;
    let storm_cfg = cfg(args, "W5 W2b during storm", &t)?;
    let meter = CpuMeter::start(args);
    let (logins, storm) = tokio::join!(
        load::run(login_cfg, Plan::Repeat(vec![t.login_request(&t.client_id)])),
        load::run(storm_cfg, Plan::Repeat(vec![verify]))
    );
    let cpu = meter.json();
    summary(&logins);
    summary(&storm);
    emit(
        args,
        json!({
            "workload": "W5",
            "cores": cores,
            "pbkdf2_iterations": iterations,
            "pbkdf2_ms_per_hash": load::round(hash_s * 1000.0, 2),
            "pbkdf2_limit_per_s": load::round(limit, 2),
            "logins_pct_of_limit": load::round(100.0 * logins.rate() / limit, 1),
            "w2_storm_pct_of_solo": load::round(100.0 * storm.rate() / solo.rate().max(1e-9), 1),
            "logins": logins.to_json(),
            "w2_solo": solo.to_json(),
            "w2_storm": storm.to_json(),
            "cpu_storm": cpu,
            "memory_start": memory_start,
        }),
    )
}

/// W4: exec → first 200 from /healthz (median of --runs), and idle RSS after start.
fn startup(args: &Args) -> Res<()> {
    let bin = args.get("bin")?;
    let db = args.get("db")?;
    let runs: usize = args.num("runs", 10)?;
    let mut times = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        let mut child = Command::new(bin)
            .args(["--db", db, "serve", "--listen", "127.0.0.1:0"])
            .args(serve_tls_args(args)?)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{bin}: {e}"))?;
        let pid = child.id().to_string();
        let outcome = (|| -> Res<(f64, Option<u64>)> {
            let stdout = child.stdout.take().ok_or("no stdout")?;
            let mut line = String::new();
            BufReader::new(stdout)
                .read_line(&mut line)
                .map_err(|e| e.to_string())?;
            let addr: SocketAddr = line
                .trim()
                .strip_prefix(if tls::enabled() { "listening on https://" } else { "listening on http://" })
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| format!("unexpected first line: {line:?}"))?;
            let give_up = t0 + Duration::from_secs(10);
            loop {
                if healthz_ok(addr) {
                    break;
                }
                if Instant::now() > give_up {
                    return Err("no 200 from /healthz within 10 s".into());
                }
            }
            let dt = t0.elapsed().as_secs_f64();
            std::thread::sleep(Duration::from_millis(500));
            let kb = mem(Some(&pid))["rss_kb"].as_u64();
            Ok((dt, kb))
        })();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let (dt, kb) = outcome?;
        times.push(dt * 1000.0);
        if let Some(kb) = kb {
            rss.push(kb);
        }
    }
    times.sort_by(f64::total_cmp);
    rss.sort();
    let median_ms = times[times.len() / 2];
    let idle_kb = rss.get(rss.len() / 2).copied();
    eprintln!(
        "  W4 startup: median {median_ms:.1} ms (min {:.1}, max {:.1}); idle RSS {} KiB",
        times[0],
        times[times.len() - 1],
        idle_kb.map_or("?".into(), |k| k.to_string())
    );
    emit(
        args,
        json!({
            "workload": "W4",
            "startup_ms_median": load::round(median_ms, 2),
            "startup_ms_all": times.iter().map(|t| load::round(*t, 2)).collect::<Vec<_>>(),
            "idle_rss_kb_median": idle_kb,
            "idle_rss_kb_all": rss,
        }),
    )
}

/// One blocking GET /healthz (over TLS when on); true on 200.
fn healthz_ok(addr: SocketAddr) -> bool {
    let req = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tls::blocking_exchange(addr, req.as_bytes()).is_some_and(|head| &head[9..12] == b"200")
}

/// `--tls-cert FILE --tls-key FILE` for the server W4 starts, when given (with `--tls-ca`).
fn serve_tls_args(args: &Args) -> Res<Vec<String>> {
    match (args.opt("tls-cert"), args.opt("tls-key")) {
        (Some(cert), Some(key)) => Ok(vec!["--tls-cert".into(), cert.into(), "--tls-key".into(), key.into()]),
        (None, None) => Ok(Vec::new()),
        _ => Err("--tls-cert and --tls-key go together".into()),
    }
}
