//! The processes the benchmark starts and watches: the build, latchkey, the
//! reference server, and the numbers /proc keeps about them.

use std::{net::SocketAddr, path::Path, process::Stdio, time::Duration};

use anyhow::{Context, bail};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// A child process that is killed when dropped.
pub struct Running {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id().expect("still running")
    }

    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
        if tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

/// Starts `program` and waits for its `listening on http://ADDR` line.
pub async fn start(program: &Path, args: &[&str], env: &[(&str, String)], cwd: &Path) -> anyhow::Result<Running> {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars() {
        if key.starts_with("LATCHKEY_") {
            cmd.env_remove(key);
        }
    }
    let mut child = cmd
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr = rest.split_whitespace().next().unwrap_or_default();
                return Ok(addr.parse::<SocketAddr>()?);
            }
        }
        bail!("{} exited before listening", program.display())
    })
    .await
    .context("no `listening on` line within 60 s")??;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Running { child, addr })
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Resident memory now, in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    status_kib(pid, "VmRSS:") as f64 / 1024.0
}

/// The highest resident memory the process has had, in MiB.
pub fn peak_rss_mib(pid: u32) -> f64 {
    status_kib(pid, "VmHWM:") as f64 / 1024.0
}

/// CPU seconds (user + system) a process has used so far; `None` = this process.
pub fn cpu_seconds(pid: Option<u32>) -> f64 {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".into(),
    };
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ")".
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0 // USER_HZ is 100 on Linux
}

/// Busy CPU seconds of the whole machine so far, all cores together
/// (`/proc/stat`: user, nice, system, irq and softirq; not idle, iowait or steal).
pub fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> =
        stat.lines().next().unwrap_or_default().split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let busy: f64 = [0, 1, 2, 5, 6].iter().filter_map(|&i| ticks.get(i)).sum();
    busy / 100.0 // USER_HZ
}

/// Where the CPU went over a stretch of time, in % of one core.
#[derive(Clone, Copy, Default)]
pub struct Cpu {
    pub server: f64,
    /// This process: the load generator (or, around pgbench, nothing).
    pub generator: f64,
    /// Everything else on the machine: Postgres, pgbench, the kernel's own threads.
    pub rest: f64,
}

impl Cpu {
    pub fn total(&self) -> f64 {
        self.server + self.generator + self.rest
    }

    /// The average of two equally long measurements.
    pub fn mean(&self, other: &Cpu) -> Cpu {
        Cpu {
            server: (self.server + other.server) / 2.0,
            generator: (self.generator + other.generator) / 2.0,
            rest: (self.rest + other.rest) / 2.0,
        }
    }
}

/// Measures `Cpu` from `start` to `stop`.
pub struct CpuMeter {
    server: u32,
    start: std::time::Instant,
    server_cpu: f64,
    own_cpu: f64,
    machine: f64,
}

impl CpuMeter {
    pub fn start(server: u32) -> Self {
        Self {
            server,
            start: std::time::Instant::now(),
            server_cpu: cpu_seconds(Some(server)),
            own_cpu: cpu_seconds(None),
            machine: machine_busy_seconds(),
        }
    }

    pub fn stop(&self) -> Cpu {
        let percent = |seconds: f64| seconds / self.start.elapsed().as_secs_f64() * 100.0;
        let server = percent(cpu_seconds(Some(self.server)) - self.server_cpu);
        let generator = percent(cpu_seconds(None) - self.own_cpu);
        let machine = percent(machine_busy_seconds() - self.machine);
        Cpu { server, generator, rest: (machine - server - generator).max(0.0) }
    }
}
