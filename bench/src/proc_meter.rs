//! What a process used over a window, read from `/proc`: CPU time as the kernel's tick
//! counters (`/proc/PID/stat`, 10 ms steps, threads that exited included: the server's
//! idle blocking threads exit, so the live threads' nanosecond `schedstat` would miss
//! their time), the generator's own (single) thread in nanoseconds, context switches
//! summed over the live threads (`/proc/PID/status` only shows the main thread's), and
//! the thread count. W6's cost windows divide these by the requests served to get CPU
//! and switches per request.

use std::time::Instant;

use serde_json::{json, Value};

/// One reading of a process.
#[derive(Clone, Copy, Default)]
pub struct Sample {
    /// utime + stime in seconds (ticks; includes exited threads).
    pub cpu_ticks_s: f64,
    /// Sum of the live threads' run time, in seconds (ns precision).
    pub run_s: f64,
    pub voluntary_switches: u64,
    pub involuntary_switches: u64,
    pub threads: u64,
}

impl Sample {
    /// `pid` is a number or "self".
    pub fn read(pid: &str) -> Sample {
        let mut s = Sample {
            cpu_ticks_s: crate::cpu_seconds(pid).unwrap_or(0.0),
            ..Sample::default()
        };
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return s;
        };
        for task in tasks.flatten() {
            let dir = task.path();
            s.threads += 1;
            if let Ok(sched) = std::fs::read_to_string(dir.join("schedstat")) {
                let ns: f64 = sched
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0.0);
                s.run_s += ns / 1e9;
            }
            if let Ok(status) = std::fs::read_to_string(dir.join("status")) {
                for line in status.lines() {
                    let value = || {
                        line.split_whitespace()
                            .nth(1)
                            .and_then(|v| v.parse::<u64>().ok())
                            .unwrap_or(0)
                    };
                    if line.starts_with("voluntary_ctxt_switches:") {
                        s.voluntary_switches += value();
                    } else if line.starts_with("nonvoluntary_ctxt_switches:") {
                        s.involuntary_switches += value();
                    }
                }
            }
        }
        s
    }
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
    pub server_ticks_s: f64,
    pub server_switches: f64,
    pub server_threads: u64,
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
        let switches = |s: &Sample| (s.voluntary_switches + s.involuntary_switches) as f64;
        Used {
            wall_s: self.at.elapsed().as_secs_f64(),
            server_ticks_s: server.cpu_ticks_s - self.server.cpu_ticks_s,
            // Threads that exited in the window take their switches with them: a floor.
            server_switches: (switches(&server) - switches(&self.server)).max(0.0),
            server_threads: server.threads,
            generator_run_s: generator.run_s - self.generator.run_s,
        }
    }
}

impl Used {
    /// What `requests` cost each, beyond an idle window's rate (`idle`).
    pub fn per_request(&self, requests: u64, idle: &Used) -> Value {
        let n = requests.max(1) as f64;
        let rate = |v: f64, w: f64| v / w.max(1e-9);
        let beyond = |v: f64, idle_v: f64| v - rate(idle_v, idle.wall_s) * self.wall_s;
        json!({
            "requests": requests,
            "wall_s": round(self.wall_s, 2),
            "server_cpu_us": round(1e6 * beyond(self.server_ticks_s, idle.server_ticks_s) / n, 1),
            "server_switches": round(beyond(self.server_switches, idle.server_switches) / n, 2),
            "server_threads": self.server_threads,
            "generator_cpu_us": round(1e6 * beyond(self.generator_run_s, idle.generator_run_s) / n, 1),
        })
    }

    pub fn json(&self) -> Value {
        json!({
            "wall_s": round(self.wall_s, 2),
            "server_cpu_s": round(self.server_ticks_s, 2),
            "server_switches": self.server_switches,
            "server_threads": self.server_threads,
            "generator_cpu_s": round(self.generator_run_s, 4),
        })
    }
}

fn round(v: f64, digits: i32) -> f64 {
    crate::load::round(v, digits)
}
