//! What a process used over a window, read from `/proc`: CPU time as the kernel's tick
//! counters (`/proc/PID/stat`, 10 ms steps, exited threads included) and as nanosecond
//! run time (`/proc/PID/task/TID/schedstat`), and context switches
//! (`/proc/PID/task/TID/status`; the process's own `status` shows only the main
//! thread's). Run time and switches are summed per thread over the threads alive at the
//! window's end (a thread born in the window counts from zero): a thread that exits in the
//! window is one of tokio's idle blocking threads, which exit after 10 s without work, so
//! little is lost, while summing the live threads' totals would subtract its whole life.
//! W6's cost windows divide these by the requests served to get CPU and switches per
//! request.

use std::collections::HashMap;
use std::time::Instant;

use serde_json::{json, Value};

/// One thread's counters: run time (ns) and context switches.
#[derive(Clone, Copy, Default)]
struct Thread {
    run_ns: u64,
    switches: u64,
}

/// One reading of a process.
#[derive(Default)]
struct Sample {
    /// utime + stime in seconds (ticks).
    cpu_ticks_s: f64,
    threads: HashMap<String, Thread>,
}

impl Sample {
    /// `pid` is a number or "self".
    fn read(pid: &str) -> Sample {
        let mut s = Sample {
            cpu_ticks_s: crate::cpu_seconds(pid).unwrap_or(0.0),
            threads: HashMap::new(),
        };
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return s;
        };
        for task in tasks.flatten() {
            let dir = task.path();
            let mut t = Thread::default();
            if let Ok(sched) = std::fs::read_to_string(dir.join("schedstat")) {
                t.run_ns = first_number(&sched);
            }
            if let Ok(status) = std::fs::read_to_string(dir.join("status")) {
                for line in status.lines() {
                    if let Some(v) = line
                        .strip_prefix("voluntary_ctxt_switches:")
                        .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
                    {
                        t.switches += first_number(v);
                    }
                }
            }
            s.threads
                .insert(task.file_name().to_string_lossy().into_owned(), t);
        }
        s
    }

    /// Run seconds and switches of the threads alive now, since `earlier`.
    fn since(&self, earlier: &Sample) -> (f64, f64) {
        let (mut run_ns, mut switches) = (0u64, 0u64);
        for (tid, now) in &self.threads {
            let before = earlier.threads.get(tid).copied().unwrap_or_default();
            run_ns += now.run_ns.saturating_sub(before.run_ns);
            switches += now.switches.saturating_sub(before.switches);
        }
        (run_ns as f64 / 1e9, switches as f64)
    }
}

fn first_number(text: &str) -> u64 {
    text.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A window over which the server and the generator are measured.
pub struct Window {
    at: Instant,
    pid: String,
    server: Sample,
    generator: Sample,
}

/// What one window used, as totals.
#[derive(Clone, Copy, Default)]
pub struct Used {
    pub wall_s: f64,
    pub server_run_s: f64,
    pub server_ticks_s: f64,
    pub server_switches: f64,
    pub server_threads: usize,
    pub generator_run_s: f64,
}

impl Window {
    pub fn start(pid: &str) -> Window {
        Window {
            at: Instant::now(),
            pid: pid.to_owned(),
            server: Sample::read(pid),
            generator: Sample::read("self"),
        }
    }

    pub fn end(self) -> Used {
        let (server, generator) = (Sample::read(&self.pid), Sample::read("self"));
        let (server_run_s, server_switches) = server.since(&self.server);
        Used {
            wall_s: self.at.elapsed().as_secs_f64(),
            server_run_s,
            server_ticks_s: server.cpu_ticks_s - self.server.cpu_ticks_s,
            server_switches,
            server_threads: server.threads.len(),
            generator_run_s: generator.since(&self.generator).0,
        }
    }
}

impl Used {
    /// What `requests` cost each, beyond an idle window's rate (`idle`).
    pub fn per_request(&self, requests: u64, idle: &Used) -> Value {
        let n = requests.max(1) as f64;
        let beyond = |v: f64, idle_v: f64| v - idle_v / idle.wall_s.max(1e-9) * self.wall_s;
        json!({
            "requests": requests,
            "wall_s": round(self.wall_s, 2),
            "server_cpu_us": round(1e6 * beyond(self.server_run_s, idle.server_run_s) / n, 1),
            "server_cpu_us_ticks": round(1e6 * beyond(self.server_ticks_s, idle.server_ticks_s) / n, 1),
            "server_switches": round(beyond(self.server_switches, idle.server_switches) / n, 2),
            "server_threads": self.server_threads,
            "generator_cpu_us": round(1e6 * beyond(self.generator_run_s, idle.generator_run_s) / n, 1),
        })
    }

    pub fn json(&self) -> Value {
        json!({
            "wall_s": round(self.wall_s, 2),
            "server_cpu_s": round(self.server_run_s, 4),
            "server_cpu_s_ticks": round(self.server_ticks_s, 2),
            "server_switches": self.server_switches,
            "server_threads": self.server_threads,
            "generator_cpu_s": round(self.generator_run_s, 4),
        })
    }
}

fn round(v: f64, digits: i32) -> f64 {
    crate::load::round(v, digits)
}
