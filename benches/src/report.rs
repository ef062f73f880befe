//! The table, the ratios against the ceilings, and the targets.

use crate::{load::Stats, pg::PgbenchResult, procs::Cpu};

pub struct Row {
    name: String,
    clients: usize,
    stats: Stats,
    cpu: Cpu,
}

impl Row {
    pub fn new(name: &str, clients: usize, (stats, cpu): (Stats, Cpu)) -> Self {
        Self { name: name.into(), clients, stats, cpu }
    }
}

pub struct Mixed {
    pub refresh: Stats,
    pub jwks: Stats,
    pub logins: Option<Stats>,
    pub cpu: Cpu,
}

#[derive(Default)]
pub struct Report {
    smoke: bool,
    sqlite: bool,
    clients: usize,
    rows: Vec<Row>,
    pub jwks_reference: f64,
    pub jwks: f64,
    /// JWKS and status list, each pair measured interleaved: plain, then 304.
    pub status_list: [f64; 2],
    pub status_list_304: [f64; 2],
    pub me: f64,
    pub refresh: f64,
    pub refresh_p99: f64,
    pub refresh_cpu: Cpu,
    pub login: f64,
    pub argon2_ceiling: f64,
    mixed_p99: Option<[f64; 4]>,
    pgbench: Option<(PgbenchResult, Cpu)>,
    pub idle_rss: f64,
    pub peak_rss: f64,
}

impl Report {
    pub fn new(smoke: bool, sqlite: bool, clients: usize) -> Self {
        Self { smoke, sqlite, clients, ..Self::default() }
    }

    pub fn add(&mut self, row: Row) {
        self.rows.push(row);
    }

    pub fn last_rate(&self) -> f64 {
        self.rows.last().map(|r| r.stats.rate()).unwrap_or_default()
    }

    pub fn mixed(&mut self, r: usize, j: usize, l: usize, alone: Mixed, loaded: Mixed) {
        self.mixed_p99 =
            Some([alone.refresh.ms(0.99), loaded.refresh.ms(0.99), alone.jwks.ms(0.99), loaded.jwks.ms(0.99)]);
        self.rows.push(Row {
            name: format!("mix, no logins: refresh ({r} clients)"),
            clients: r,
            stats: alone.refresh,
            cpu: alone.cpu,
        });
        self.rows.push(Row {
            name: format!("mix, no logins: JWKS ({j} clients)"),
            clients: j,
            stats: alone.jwks,
            cpu: alone.cpu,
        });
        self.rows.push(Row {
            name: "mix, logins saturating: refresh".into(),
            clients: r,
            stats: loaded.refresh,
            cpu: loaded.cpu,
        });
        self.rows.push(Row {
            name: "mix, logins saturating: JWKS".into(),
            clients: j,
            stats: loaded.jwks,
            cpu: loaded.cpu,
        });
        if let Some(logins) = loaded.logins {
            self.rows.push(Row {
                name: "mix, logins saturating: login".into(),
                clients: l,
                stats: logins,
                cpu: loaded.cpu,
            });
        }
    }

    pub fn pgbench(&mut self, result: PgbenchResult, cpu: Cpu) {
        self.pgbench = Some((result, cpu));
    }

    pub fn print(&self) {
        let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()))
            .unwrap_or(0);
        let commit = std::process::Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let date = std::process::Command::new("date")
            .args(["-u", "+%Y-%m-%d %H:%M UTC"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
        println!();
        println!(
            "latchkey benchmark — {date}, commit {commit}, {cores} cores, {:.1} GiB, store {}{}",
            mem_kib as f64 / 1024.0 / 1024.0,
            if self.sqlite { "SQLite" } else { "Postgres (same machine)" },
            if self.smoke { ", SMOKE RUN (numbers meaningless)" } else { "" }
        );
        println!();
        println!(
            "| scenario | clients | req/s | p50 ms | p99 ms | max ms | errors | server CPU | load-gen CPU | Postgres + rest CPU |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for row in &self.rows {
            let s = &row.stats;
            println!(
                "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {:.0}% | {:.0}% | {:.0}% |",
                row.name,
                row.clients,
                s.rate(),
                s.ms(0.5),
                s.ms(0.99),
                s.max_ms(),
                s.errors,
                row.cpu.server,
                row.cpu.generator,
                row.cpu.rest
            );
        }
        println!();
        println!("| ceiling and targets | measured | target | |");
        println!("|---|---:|---|---|");
        let mark = |ok: bool| if ok { "met" } else { "NOT met" };
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b * 100.0 } else { 0.0 };
        let params = latchkey::argon2().params().clone();
        println!(
            "| argon2id ceiling (m={} KiB, t={}, p={}, all cores, outside the server) | {:.1} hashes/s | | |",
            params.m_cost(),
            params.t_cost(),
            params.p_cost(),
            self.argon2_ceiling
        );
        let login = ratio(self.login, self.argon2_ceiling);
        println!("| login vs argon2 ceiling | {:.1}/s = {login:.1}% | ≥ 85% | {} |", self.login, mark(login >= 85.0));
        let ok = self.refresh >= 4000.0 && self.refresh_p99 <= 20.0;
        println!(
            "| refresh at {} clients | {:.0}/s, p99 {:.2} ms | ≥ 4000/s, p99 ≤ 20 ms | {} |",
            self.clients,
            self.refresh,
            self.refresh_p99,
            mark(ok)
        );
        if let Some((pg, pg_cpu)) = &self.pgbench {
            let share = ratio(self.refresh, pg.tps);
            println!(
                "| pgbench ceiling: latchkey's rotation SQL, -c{} -M prepared | {:.0} tps (avg {:.2} ms, {} failed) | | |",
                self.clients, pg.tps, pg.latency_ms, pg.failed
            );
            println!("| refresh vs pgbench ceiling | {share:.1}% | ≥ 50% | {} |", mark(share >= 50.0));
            self.print_cpu_per_rotation(pg, pg_cpu);
        }
        let jwks = ratio(self.jwks, self.jwks_reference);
        println!("| JWKS vs bare poem reference | {jwks:.1}% | ≥ 70% | {} |", mark(jwks >= 70.0));
        for (what, [jwks, list]) in [("", self.status_list), (" (304)", self.status_list_304)] {
            if jwks > 0.0 {
                let share = ratio(list, jwks);
                println!("| status list vs JWKS{what}, same run | {share:.1}% | ≥ 90% | {} |", mark(share >= 90.0));
            }
        }
        println!("| GET /v1/users/me | {:.0}/s | ≥ 10000/s | {} |", self.me, mark(self.me >= 10_000.0));
        if let Some([r0, r1, j0, j1]) = self.mixed_p99 {
            let (rr, jr) = (r1 / r0, j1 / j0);
            println!(
                "| refresh p99 under login load / alone | {r1:.2} / {r0:.2} ms = {rr:.1}× | ≤ 3× | {} |",
                mark(rr <= 3.0)
            );
            println!("| JWKS p99 under login load / alone | {j1:.2} / {j0:.2} ms = {jr:.1}× | | |");
        }
        println!("| RSS idle after start | {:.1} MiB | ≤ 20 MiB | {} |", self.idle_rss, mark(self.idle_rss <= 20.0));
        println!("| RSS peak under load | {:.1} MiB | ≤ 60 MiB | {} |", self.peak_rss, mark(self.peak_rss <= 60.0));
    }

    /// The machine's CPU time per rotation in each run, and the share of the
    /// ceiling that CPU alone allows: if both runs had every core busy,
    /// refresh could reach at most (pgbench's µs) / (refresh's µs) of it.
    fn print_cpu_per_rotation(&self, pg: &PgbenchResult, pg_cpu: &Cpu) {
        let r = &self.refresh_cpu;
        if self.refresh <= 0.0 || pg.tps <= 0.0 {
            return;
        }
        let per = |percent: f64, rate: f64| percent / 100.0 / rate * 1e6;
        let (refresh_us, pg_us) = (per(r.total(), self.refresh), per(pg_cpu.total(), pg.tps));
        println!(
            "| CPU per rotation, refresh (latchkey + load-gen + Postgres and rest; cores busy) | {refresh_us:.0} µs ({:.0} + {:.0} + {:.0}; {:.0}%) | | |",
            per(r.server, self.refresh),
            per(r.generator, self.refresh),
            per(r.rest, self.refresh),
            r.total(),
        );
        println!(
            "| CPU per rotation, pgbench (pgbench + Postgres; cores busy) | {pg_us:.0} µs ({:.0}%) | | |",
            pg_cpu.total()
        );
        println!("| refresh vs ceiling allowed by CPU per rotation alone | {:.0}% | | |", pg_us / refresh_us * 100.0);
    }

    /// In smoke mode: every scenario completed requests and none failed. A
    /// request answered just after the window counts as completed here:
    /// logins run at idle priority, and in a one-second smoke window on a
    /// debug build the saturating refresh and JWKS load can hold them off
    /// until it stops — which is the design, not a failure.
    pub fn check_smoke(&self) -> anyhow::Result<()> {
        let mut problems = Vec::new();
        for row in &self.rows {
            if row.stats.requests + row.stats.late == 0 || row.stats.errors > 0 {
                problems.push(format!(
                    "{}: {} requests (+{} late), {} errors ({})",
                    row.name,
                    row.stats.requests,
                    row.stats.late,
                    row.stats.errors,
                    row.stats.first_error.as_deref().unwrap_or("-")
                ));
            }
        }
        if let Some((pg, _)) = &self.pgbench
            && (pg.tps <= 0.0 || pg.failed > 0)
        {
            problems.push(format!("pgbench: {} tps, {} failed", pg.tps, pg.failed));
        }
        if problems.is_empty() {
            println!("\nsmoke: every scenario completed without errors");
            Ok(())
        } else {
            anyhow::bail!("smoke run failed:\n  {}", problems.join("\n  "))
        }
    }
}
