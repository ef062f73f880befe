//! latchkey's benchmark: starts latchkey (Postgres by default, `--sqlite` for
//! the embedded store) and a bare poem reference server as child processes,
//! seeds users, runs every scenario for a bounded time, stops what it started
//! and prints one table. `--smoke` runs each scenario for a second and fails
//! unless all of them completed without errors (CI runs that).
//!
//! The server is this same executable run as `__latchkey serve`: it calls
//! `latchkey::main`, the very function the `latchkey` binary is, so
//! `cargo run --release -p latchkey-bench` builds everything once.

mod clients;
mod load;
mod mfa;
mod pg;
mod procs;
mod reference;
mod report;
mod status;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Parser;
use clients::{Getter, LoggerIn, Refresher};
use hyper::StatusCode;
use load::{Client, Stats, once, request};
use procs::{Cpu, CpuMeter};
use report::{Report, Row};

const PASSWORD: &str = "Bench7Tortoise";
const JWKS: &str = "/.well-known/jwks.json";

#[derive(Debug, Parser)]
#[command(name = "latchkey-bench", about = "Benchmark latchkey and print one table")]
struct Args {
    /// Use SQLite instead of Postgres (no pgbench ceiling then).
    #[arg(long)]
    sqlite: bool,
    /// One second per scenario; exit non-zero unless every scenario ran without errors.
    #[arg(long)]
    smoke: bool,
    /// Seconds per scenario.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent clients per scenario.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Run only these scenario groups: jwks (with the status list), me, refresh, login, mix, pgbench,
    /// metrics (on vs off), prepared (prepared statements on vs off), big (a database of a million
    /// users vs a small one), scale (two instances), enumeration, revocation (list sizes and
    /// propagation), mfa (second-factor verify, and sign-ins with one vs plain logins).
    /// pgbench, prepared, big, scale, revocation and mfa need Postgres.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Extra LATCHKEY_* settings for the server, as NAME=VALUE (for experiments).
    #[arg(long = "set", value_parser = parse_setting)]
    settings: Vec<(String, String)>,
}

fn parse_setting(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or("expected NAME=VALUE")?;
    Ok((k.to_string(), v.to_string()))
}

impl Args {
    fn runs(&self, group: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == group)
    }
}

fn main() -> std::process::ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    match argv.get(1).map(String::as_str) {
        Some("__latchkey") => latchkey::main(argv[1..].iter().cloned()),
        Some("__reference") => reference::main(argv.get(2).map(String::as_str).unwrap_or_default()),
        _ => {
            let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
            match runtime.block_on(bench(Args::parse())) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
    }
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let duration = Duration::from_secs(if args.smoke { 1 } else { args.seconds });
    let exe = std::env::current_exe()?;
    if cfg!(debug_assertions) && !args.smoke {
        eprintln!("warning: a debug build; run `cargo run --release -p latchkey-bench` for real numbers");
    }
    let db = if args.sqlite { None } else { Some(pg::BenchDb::create().context("creating the bench database")?) };
    let tmp = tempfile::tempdir()?;
    let database_url = match &db {
        Some(db) => db.url(),
        None => format!("sqlite://{}/bench.db?mode=rwc", tmp.path().display()),
    };
    let mut env = vec![
        ("LATCHKEY_DATABASE_URL", database_url),
        ("LATCHKEY_BIND", "127.0.0.1:0".to_string()),
        ("LATCHKEY_KEYS_DIR", tmp.path().join("keys").display().to_string()),
        ("LATCHKEY_REQUIRE_EMAIL_VERIFICATION", "false".to_string()),
        ("LATCHKEY_RATE_LIMIT_ENABLED", "false".to_string()),
        // The load generator is one peer with many connections.
        ("LATCHKEY_MAX_CONNECTIONS_PER_IP", "4096".to_string()),
        ("LATCHKEY_LOG", "warn,latchkey::startup=info".to_string()),
    ];
    for (name, value) in &args.settings {
        env.push((name.as_str(), value.clone()));
    }
    let server = procs::start(&exe, &["__latchkey", "serve"], &env, tmp.path()).await?;
    let (addr, pid) = (server.addr, server.pid());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = procs::rss_mib(pid);

    let jwks = once(addr, request("GET", "/.well-known/jwks.json", None, &[])).await?;
    if jwks.status() != StatusCode::OK {
        bail!("JWKS answered {}", jwks.status());
    }
    std::fs::write(tmp.path().join("jwks.json"), jwks.body())?;
    let etag = jwks.headers().get("etag").context("JWKS without an ETag")?.to_str()?.to_string();

    let n = args.clients;
    eprintln!("seeding {} accounts…", 2 * n);
    let users: Vec<String> = (0..2 * n).map(|i| format!("user{i}@bench.invalid")).collect();
    for email in &users {
        signup(addr, email).await?;
    }
    let mut report = Report::new(args.smoke, args.sqlite, n);

    if args.runs("jwks") {
        // Discovery, against a bare poem server on the same bytes.
        let jwks_path = tmp.path().join("jwks.json").display().to_string();
        let reference = procs::start(&exe, &["__reference", &jwks_path], &[], tmp.path()).await?;
        let getter = |path: &str, headers: Vec<(&'static str, String)>, expect| -> Box<dyn Client> {
            Box::new(Getter { path: path.into(), headers, expect })
        };
        let clients = |path: &str, etag: Option<&str>| -> Vec<Box<dyn Client>> {
            let headers = || etag.map(|e| ("if-none-match", e.to_string())).into_iter().collect();
            let expect = if etag.is_some() { StatusCode::NOT_MODIFIED } else { StatusCode::OK };
            (0..n).map(|_| getter(path, headers(), expect)).collect()
        };
        let reference_stats = measure(reference.addr, reference.pid(), clients(JWKS, None), duration).await;
        reference.stop().await;
        report.add(Row::new("reference: bare poem, same JWKS bytes", n, reference_stats));
        report.jwks_reference = report.last_rate();

        // The status list next to the JWKS, interleaved as refresh and
        // pgbench are (JWKS, list, list, JWKS), plain and then revalidated.
        let list = status::list_path(addr, &users[0]).await?;
        let first = once(addr, request("GET", &list, None, &[])).await?;
        let list_etag = first.headers().get("etag").context("a list without an ETag")?.to_str()?.to_string();
        let half = Duration::from_secs((duration.as_secs() / 2).max(1));
        for revalidate in [false, true] {
            let (jwks_etag, list_etag) = if revalidate { (Some(&*etag), Some(&*list_etag)) } else { (None, None) };
            let j1 = measure(addr, pid, clients(JWKS, jwks_etag), half).await;
            let l1 = measure(addr, pid, clients(&list, list_etag), half).await;
            let l2 = measure(addr, pid, clients(&list, list_etag), half).await;
            let j2 = measure(addr, pid, clients(JWKS, jwks_etag), half).await;
            let tag = if revalidate { " (If-None-Match → 304)" } else { "" };
            report.add(Row::new(&format!("GET {JWKS}{tag}"), n, (j1.0.merged(j2.0), j1.1.mean(&j2.1))));
            let jwks_rate = report.last_rate();
            report.add(Row::new(
                &format!("GET /v1/status-lists/{{id}}{tag}"),
                n,
                (l1.0.merged(l2.0), l1.1.mean(&l2.1)),
            ));
            let rates = [jwks_rate, report.last_rate()];
            if revalidate {
                report.status_list_304 = rates;
            } else {
                report.jwks = jwks_rate;
                report.status_list = rates;
            }
        }
    }

    if args.runs("me") {
        // Verification cost: every client with its own access token.
        let mut me_clients: Vec<Box<dyn Client>> = Vec::new();
        for email in &users[..n] {
            let tokens = login(addr, email).await?;
            let bearer = format!("Bearer {}", tokens["access_token"].as_str().unwrap_or_default());
            let headers = vec![("authorization", bearer)];
            me_clients.push(Box::new(Getter { path: "/v1/users/me".into(), headers, expect: StatusCode::OK }));
        }
        report.add(Row::new("GET /v1/users/me (bearer)", n, measure(addr, pid, me_clients, duration).await));
        report.me = report.last_rate();
    }

    let pgbench_db = db.as_ref().filter(|_| args.runs("pgbench"));
    if let Some(db) = pgbench_db {
        // pgbench rotates chains of its own: one session per pgbench client.
        signup(addr, "pgbench@bench.invalid").await?;
        for _ in 0..n {
            login(addr, "pgbench@bench.invalid").await?;
        }
        // Vacuum and checkpoint the seeding's writes, so refresh and pgbench
        // both start from a settled database.
        pg::settle(db)?;
    }
    match (args.runs("refresh"), pgbench_db) {
        (true, Some(db)) => {
            // The machine's speed drifts by a third over minutes here, so
            // the two are interleaved, each in two halves: refresh, pgbench,
            // pgbench, refresh. A steady drift cancels out of their ratio.
            let half = Duration::from_secs((duration.as_secs() / 2).max(1));
            let first = measure(addr, pid, refreshers(addr, &users[..n]).await?, half).await;
            let pgbench = [pgbench_slice(db, pid, n, half, tmp.path())?, pgbench_slice(db, pid, n, half, tmp.path())?];
            let second = measure(addr, pid, refreshers(addr, &users[..n]).await?, half).await;
            report.pgbench(pg::PgbenchResult::mean(&pgbench[0].0, &pgbench[1].0), pgbench[0].1.mean(&pgbench[1].1));
            add_refresh(&mut report, n, (first.0.merged(second.0), first.1.mean(&second.1)));
        }
        (true, None) => {
            let stats = measure(addr, pid, refreshers(addr, &users[..n]).await?, duration).await;
            add_refresh(&mut report, n, stats);
        }
        (false, Some(db)) => {
            let (result, cpu) = pgbench_slice(db, pid, n, duration, tmp.path())?;
            report.pgbench(result, cpu);
        }
        (false, None) => {}
    }
    if let Some(db) = pgbench_db {
        // Vacuum and checkpoint the rotations' writes now, not during the next scenario.
        pg::settle(db)?;
    }

    if args.runs("login") {
        // Login against the argon2 ceiling of this machine, interleaved as
        // refresh and pgbench are: ceiling, login, login, ceiling.
        let half = duration / 2;
        let loggers = || users[n..].iter().map(|e| Box::new(LoggerIn::new(e, PASSWORD)) as Box<dyn Client>).collect();
        let ceiling = argon2_ceiling(half);
        let (first, first_cpu) = measure(addr, pid, loggers(), half).await;
        let (second, second_cpu) = measure(addr, pid, loggers(), half).await;
        report.argon2_ceiling = (ceiling + argon2_ceiling(half)) / 2.0;
        report.add(Row::new("POST /v1/auth/login", n, (first.merged(second), first_cpu.mean(&second_cpu))));
        report.login = report.last_rate();
    }

    let mfa_sign_ins = match db.as_ref().filter(|_| args.runs("mfa")) {
        Some(db) => {
            let (tokens, accounts) = if args.smoke { (400, 8 * n) } else { (40_000, 64 * n) };
            eprintln!("seeding {} accounts with TOTP by SQL…", tokens + accounts);
            let seeded = mfa::seed(db, &tmp.path().join("keys"), PASSWORD, n, tokens, accounts)?;
            pg::settle(db)?;
            let verifiers = seeded
                .verifiers
                .into_iter()
                .map(|tokens| Box::new(mfa::Verifier { tokens: tokens.into() }) as Box<dyn Client>)
                .collect();
            report.add(Row::new("POST /v1/auth/mfa/verify (TOTP)", n, measure(addr, pid, verifiers, duration).await));
            // Sign-ins with a second factor next to plain logins: plain, mfa, mfa, plain.
            let half = duration / 2;
            let plain = || users[n..].iter().map(|e| Box::new(LoggerIn::new(e, PASSWORD)) as Box<dyn Client>).collect();
            // Each half signs in with accounts of its own: a code works once per account and step.
            let with_mfa = |second_half: bool| {
                let own = |a: &Vec<String>| a.iter().skip(usize::from(second_half)).step_by(2).cloned().collect();
                let sign_ins = seeded.sign_ins.iter().map(|a| mfa::SignIn::new(own(a), PASSWORD));
                sign_ins.map(|c| Box::new(c) as Box<dyn Client>).collect()
            };
            let (p1, p1_cpu) = measure(addr, pid, plain(), half).await;
            let (m1, m1_cpu) = measure(addr, pid, with_mfa(false), half).await;
            let (m2, m2_cpu) = measure(addr, pid, with_mfa(true), half).await;
            let (p2, p2_cpu) = measure(addr, pid, plain(), half).await;
            let (plain, with_mfa) = (p1.merged(p2), m1.merged(m2));
            let rates = (plain.rate(), with_mfa.rate() / 2.0);
            report.add(Row::new("POST /v1/auth/login (no second factor)", n, (plain, p1_cpu.mean(&p2_cpu))));
            report.add(Row::new("login + mfa/verify (2 requests a sign-in)", n, (with_mfa, m1_cpu.mean(&m2_cpu))));
            Some(rates)
        }
        None => None,
    };

    if args.runs("mix") {
        // Refresh and JWKS latency alone, then while logins saturate the CPU.
        let (r, j, l) = (n / 2, n / 4, n / 2);
        let alone = mixed(addr, pid, &users[..r], j, &[], duration).await?;
        let loaded = mixed(addr, pid, &users[..r], j, &users[n..n + l], duration).await?;
        report.mixed(r, j, l, alone, loaded);
    }

    let metrics_cost = if args.runs("metrics") {
        let off = ("LATCHKEY_METRICS_ENABLED", "false");
        let scenarios = [JWKS_ROW, ME, REFRESH];
        Some(setting_cost(&exe, &env, tmp.path(), (addr, pid), off, &users[..n], &scenarios, duration).await?)
    } else {
        None
    };
    let prepared_cost = if args.runs("prepared") && db.is_some() {
        let off = ("LATCHKEY_DATABASE_PREPARED_STATEMENTS", "false");
        Some(setting_cost(&exe, &env, tmp.path(), (addr, pid), off, &users[..n], &[ME, REFRESH], duration).await?)
    } else {
        None
    };
    let big = if args.runs("big") && db.is_some() {
        let rows = if args.smoke { 10_000 } else { 1_000_000 };
        Some(big_database(&exe, &env, tmp.path(), (addr, pid), &users[..n], rows, duration).await?)
    } else {
        None
    };

    let scale = if args.runs("scale") && db.is_some() {
        Some(two_instances(&exe, &env, tmp.path(), addr, &users[..n], duration).await?)
    } else {
        None
    };

    let timing = if args.runs("enumeration") {
        let rounds = if args.smoke { 20 } else { 500 };
        // Unknown address vs wrong password, alternating, one at a time.
        let logins = login_timing(addr, &users[0], rounds).await?;
        // Sign up, then log in with the password just chosen, on a taken and
        // on a free address: needs email verification on, so a server of its own.
        let mut env = env.clone();
        let enum_db = format!("sqlite://{}/enumeration.db?mode=rwc", tmp.path().display());
        env.retain(|(k, _)| !matches!(*k, "LATCHKEY_DATABASE_URL" | "LATCHKEY_REQUIRE_EMAIL_VERIFICATION"));
        env.push(("LATCHKEY_DATABASE_URL", enum_db));
        env.push(("LATCHKEY_REQUIRE_EMAIL_VERIFICATION", "true".into()));
        let verifying = procs::start(&exe, &["__latchkey", "serve"], &env, tmp.path()).await?;
        let signups = signup_login_timing(verifying.addr, rounds / 2).await;
        verifying.stop().await;
        Some([logins, signups?])
    } else {
        None
    };
    report.idle_rss = idle_rss;
    report.peak_rss = procs::peak_rss_mib(pid);

    // After the memory figures: the seeded lists are held in memory too.
    let revocation = match db.as_ref().filter(|_| args.runs("revocation")) {
        Some(db) => Some(revocation(&args, db, &server, &exe, &env, tmp.path()).await?),
        None => None,
    };
    server.stop().await;
    drop(db);

    report.print();
    for timing in timing.iter().flatten() {
        timing.print();
    }
    if let Some(rows) = &metrics_cost {
        let title = "metrics on (this server) vs off (a second one, LATCHKEY_METRICS_ENABLED=false), interleaved on, off, off, on";
        print_versus(title, "on", "off", rows);
    }
    if let Some(rows) = &prepared_cost {
        let title = "prepared statements on (this server) vs off (a second one, LATCHKEY_DATABASE_PREPARED_STATEMENTS=false), direct to Postgres, interleaved on, off, off, on";
        print_versus(title, "on", "off", rows);
    }
    if let Some((sizes, rows)) = &big {
        sizes.print();
        let title =
            "the small database (this server) vs the big one (a second server), interleaved small, big, big, small";
        print_versus(title, "small", "big", rows);
    }
    if let Some((plain, with_mfa)) = mfa_sign_ins {
        println!("\nsign-ins, {n} clients, interleaved plain, mfa, mfa, plain:");
        println!("  password only {plain:.1}/s   password + TOTP {with_mfa:.1}/s ({:.1}%)", with_mfa / plain * 100.0);
    }
    if let Some([one, two]) = scale {
        println!(
            "\nrefresh, {n} clients: one instance vs two on the same Postgres (half the clients each), interleaved one, two, two, one:"
        );
        println!("  one instance {one:.0}/s   two instances {two:.0}/s in all ({:.1}%)", two / one * 100.0);
    }
    if let Some((sizes, propagation)) = &revocation {
        status::print_sizes(sizes);
        status::print_propagation(propagation);
    }
    if args.smoke {
        report.check_smoke()?;
    }
    Ok(())
}

/// Refresh at `users.len()` clients on one instance, and split over two on
/// the same database: [one, two] in requests per second.
async fn two_instances(
    exe: &std::path::Path,
    env: &[(&str, String)],
    dir: &std::path::Path,
    a: SocketAddr,
    users: &[String],
    duration: Duration,
) -> anyhow::Result<[f64; 2]> {
    let second = procs::start(exe, &["__latchkey", "serve"], env, dir).await?;
    let b = second.addr;
    let half = Duration::from_secs((duration.as_secs() / 2).max(1));
    let (left, right) = users.split_at(users.len() / 2);
    let one = || async { anyhow::Ok(load::run(a, refreshers(a, users).await?, half).await) };
    let two = || async {
        let (on_a, on_b) = (refreshers(a, left).await?, refreshers(b, right).await?);
        let (x, y) = tokio::join!(load::run(a, on_a, half), load::run(b, on_b, half));
        // Both ran over the same window: their requests add up, their time does not.
        let elapsed = x.elapsed.max(y.elapsed);
        let mut both = x.merged(y);
        both.elapsed = elapsed;
        anyhow::Ok(both)
    };
    let runs = [one().await?, two().await?, two().await?, one().await?];
    second.stop().await;
    for run in &runs {
        if run.errors > 0 || run.requests + run.late == 0 {
            bail!("two instances: {} requests, {} errors ({:?})", run.requests, run.errors, run.first_error);
        }
    }
    let [o1, t1, t2, o2] = runs;
    Ok([o1.merged(o2).rate(), t1.merged(t2).rate()])
}

const ME: &str = "GET /v1/users/me (bearer)";
const REFRESH: &str = "POST /v1/auth/refresh (rotation)";
const JWKS_ROW: &str = "GET /.well-known/jwks.json";

/// Each of `scenarios` (JWKS_ROW, ME, REFRESH) against server `a` and server
/// `b`, interleaved a, b, b, a so a drift of the machine cancels; the users
/// must exist on both. Rows: (scenario, a req/s, b req/s).
async fn a_versus_b(
    a: (SocketAddr, u32),
    b: (SocketAddr, u32),
    users: &[String],
    scenarios: &[&'static str],
    duration: Duration,
) -> anyhow::Result<Vec<(&'static str, f64, f64)>> {
    let half = Duration::from_secs((duration.as_secs() / 2).max(1));
    let mut rows = Vec::new();
    for &name in scenarios {
        let clients = |addr: SocketAddr| async move {
            let mut clients: Vec<Box<dyn Client>> = Vec::new();
            for email in users {
                clients.push(match name {
                    JWKS_ROW => Box::new(Getter { path: JWKS.into(), headers: vec![], expect: StatusCode::OK }),
                    ME => {
                        let tokens = login(addr, email).await?;
                        let bearer = format!("Bearer {}", tokens["access_token"].as_str().unwrap_or_default());
                        let headers = vec![("authorization", bearer)];
                        Box::new(Getter { path: "/v1/users/me".into(), headers, expect: StatusCode::OK })
                    }
                    _ => {
                        let tokens = login(addr, email).await?;
                        let token = tokens["refresh_token"].as_str().context("refresh_token")?.to_string();
                        Box::new(Refresher { token })
                    }
                });
            }
            anyhow::Ok(clients)
        };
        let w = measure(a.0, a.1, clients(a.0).await?, half).await.0;
        let x = measure(b.0, b.1, clients(b.0).await?, half).await.0;
        let y = measure(b.0, b.1, clients(b.0).await?, half).await.0;
        let z = measure(a.0, a.1, clients(a.0).await?, half).await.0;
        for run in [&w, &x, &y, &z] {
            if run.errors > 0 || run.requests + run.late == 0 {
                bail!("{name}: {} requests, {} errors ({:?})", run.requests, run.errors, run.first_error);
            }
        }
        rows.push((name, w.merged(z).rate(), x.merged(y).rate()));
    }
    Ok(rows)
}

/// `scenarios` against this server and a second one on the same database
/// with one setting changed.
#[allow(clippy::too_many_arguments)]
async fn setting_cost(
    exe: &std::path::Path,
    env: &[(&str, String)],
    dir: &std::path::Path,
    this: (SocketAddr, u32),
    changed: (&'static str, &str),
    users: &[String],
    scenarios: &[&'static str],
    duration: Duration,
) -> anyhow::Result<Vec<(&'static str, f64, f64)>> {
    let mut other_env = env.to_vec();
    other_env.push((changed.0, changed.1.to_string()));
    let other = procs::start(exe, &["__latchkey", "serve"], &other_env, dir).await?;
    let rows = a_versus_b(this, (other.addr, other.pid()), users, scenarios, duration).await;
    other.stop().await;
    rows
}

/// refresh and `/v1/users/me` on this server's small database against a
/// second server whose database holds `rows` more users, each with a
/// session and two refresh tokens (one spent), inserted by bulk SQL.
#[allow(clippy::too_many_arguments)]
async fn big_database(
    exe: &std::path::Path,
    env: &[(&str, String)],
    dir: &std::path::Path,
    this: (SocketAddr, u32),
    users: &[String],
    rows: u64,
    duration: Duration,
) -> anyhow::Result<(pg::Sizes, Vec<(&'static str, f64, f64)>)> {
    let big = pg::BenchDb::create_named("big")?;
    let mut big_env = env.to_vec();
    big_env.retain(|(k, _)| *k != "LATCHKEY_DATABASE_URL");
    big_env.push(("LATCHKEY_DATABASE_URL", big.url()));
    let server = procs::start(exe, &["__latchkey", "serve"], &big_env, dir).await?;
    eprintln!("seeding {rows} users, sessions and refresh tokens by SQL…");
    let sizes = pg::seed_bulk(&big, rows)?;
    for email in users {
        signup(server.addr, email).await?;
    }
    pg::settle(&big)?;
    let result = a_versus_b(this, (server.addr, server.pid()), users, &[REFRESH, ME], duration).await;
    server.stop().await;
    Ok((sizes, result?))
}

fn print_versus(title: &str, a: &str, b: &str, rows: &[(&'static str, f64, f64)]) {
    println!("\n{title}:");
    println!("\n| scenario | {a} req/s | {b} req/s | {b} / {a} |");
    println!("|---|---:|---:|---:|");
    for (name, x, y) in rows {
        println!("| {name} | {x:.0} | {y:.0} | {:.1}% |", y / x * 100.0);
    }
}

/// The status lists' sizes with many slots taken, and the time from a
/// logout on one instance to its bit in the list a second instance serves.
async fn revocation(
    args: &Args,
    db: &pg::BenchDb,
    server: &procs::Running,
    exe: &std::path::Path,
    env: &[(&str, String)],
    dir: &std::path::Path,
) -> anyhow::Result<(Vec<status::Size>, Vec<Duration>)> {
    let list_size = args
        .settings
        .iter()
        .find(|(k, _)| k == "LATCHKEY_STATUS_LIST_SIZE")
        .map_or(Ok(1 << 20), |(_, v)| v.parse())
        .context("LATCHKEY_STATUS_LIST_SIZE")?;
    let cases: &[(u64, u64)] = if args.smoke {
        &[(10_000, 1)]
    } else {
        &[(10_000, 1), (10_000, 10), (100_000, 1), (100_000, 10), (1_000_000, 1), (1_000_000, 10)]
    };
    eprintln!("seeding status lists…");
    let sizes = status::sizes(db, server.addr, list_size, cases).await?;
    let second = procs::start(exe, &["__latchkey", "serve"], env, dir).await?;
    signup(server.addr, "revoked@bench.invalid").await?;
    let rounds = if args.smoke { 3 } else { 30 };
    let propagation = status::propagation(server.addr, second.addr, "revoked@bench.invalid", rounds).await;
    second.stop().await;
    Ok((sizes, propagation?))
}

/// Latencies of two kinds of request that must not be told apart.
struct Timing {
    title: &'static str,
    kinds: [(&'static str, Vec<Duration>); 2],
}

impl Timing {
    fn print(&self) {
        println!("\n{}, {} attempts each, alternating, one at a time:", self.title, self.kinds[0].1.len());
        for (name, samples) in &self.kinds {
            let mut sorted = samples.clone();
            sorted.sort();
            let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
            println!("  {name:<16} median {:6.2} ms   p10 {:6.2} ms   p90 {:6.2} ms", at(0.5), at(0.1), at(0.9));
        }
    }
}

async fn login_timing(addr: SocketAddr, known: &str, attempts: usize) -> anyhow::Result<Timing> {
    let mut timing = Timing {
        title: "login timing (401 every time)",
        kinds: [("unknown address", vec![]), ("wrong password", vec![])],
    };
    let [(_, unknown), (_, wrong)] = &mut timing.kinds;
    for i in 0..attempts {
        for (email, samples) in [(format!("nobody-{i}@bench.invalid"), &mut *unknown), (known.to_string(), &mut *wrong)]
        {
            let body = format!(r#"{{"email":"{email}","password":"Wrong7Tortoise"}}"#);
            let started = std::time::Instant::now();
            let resp = once(addr, request("POST", "/v1/auth/login", Some(body), &[])).await?;
            samples.push(started.elapsed());
            if resp.status() != StatusCode::UNAUTHORIZED {
                bail!("login timing: expected 401, got {}", resp.status());
            }
        }
    }
    Ok(timing)
}

/// Signs up an address and logs in with the password just chosen: on one
/// that another sign-up took first, and on a free one (403 every time).
async fn signup_login_timing(addr: SocketAddr, rounds: usize) -> anyhow::Result<Timing> {
    let title = "sign-up, then login with the password it chose (403 email_not_verified every time)";
    let mut timing = Timing { title, kinds: [("taken address", vec![]), ("free address", vec![])] };
    let [(_, taken), (_, free)] = &mut timing.kinds;
    for i in 0..rounds {
        let owner = format!("owner-{i}@bench.invalid");
        signup_with(addr, &owner, PASSWORD).await?;
        for (email, samples) in [(owner, &mut *taken), (format!("free-{i}@bench.invalid"), &mut *free)] {
            signup_with(addr, &email, "Attacker1Choice").await?;
            let body = format!(r#"{{"email":"{email}","password":"Attacker1Choice"}}"#);
            let started = std::time::Instant::now();
            let resp = once(addr, request("POST", "/v1/auth/login", Some(body), &[])).await?;
            samples.push(started.elapsed());
            if resp.status() != StatusCode::FORBIDDEN {
                bail!("sign-up then login: expected 403, got {}", resp.status());
            }
        }
    }
    Ok(timing)
}

async fn measure(addr: SocketAddr, pid: u32, clients: Vec<Box<dyn Client>>, duration: Duration) -> (Stats, Cpu) {
    let meter = CpuMeter::start(pid);
    let stats = load::run(addr, clients, duration).await;
    (stats, meter.stop())
}

async fn signup(addr: SocketAddr, email: &str) -> anyhow::Result<()> {
    signup_with(addr, email, PASSWORD).await
}

async fn signup_with(addr: SocketAddr, email: &str, password: &str) -> anyhow::Result<()> {
    let body = format!(r#"{{"email":"{email}","password":"{password}"}}"#);
    let resp = once(addr, request("POST", "/v1/auth/signup", Some(body), &[])).await?;
    if resp.status() != StatusCode::ACCEPTED {
        bail!("signup answered {}: {}", resp.status(), String::from_utf8_lossy(resp.body()));
    }
    Ok(())
}

async fn login(addr: SocketAddr, email: &str) -> anyhow::Result<serde_json::Value> {
    let body = format!(r#"{{"email":"{email}","password":"{PASSWORD}"}}"#);
    let resp = once(addr, request("POST", "/v1/auth/login", Some(body), &[])).await?;
    if resp.status() != StatusCode::OK {
        bail!("login answered {}: {}", resp.status(), String::from_utf8_lossy(resp.body()));
    }
    Ok(serde_json::from_slice(resp.body())?)
}

/// Rotation: every client on its own session, presenting the token it was last given.
fn add_refresh(report: &mut Report, n: usize, (stats, cpu): (Stats, Cpu)) {
    report.refresh_p99 = stats.ms(0.99);
    report.refresh_cpu = cpu;
    report.add(Row::new("POST /v1/auth/refresh (rotation)", n, (stats, cpu)));
    report.refresh = report.last_rate();
}

/// pgbench at `clients`, with the machine's CPU while it ran.
fn pgbench_slice(
    db: &pg::BenchDb,
    server: u32,
    clients: usize,
    duration: Duration,
    dir: &std::path::Path,
) -> anyhow::Result<(pg::PgbenchResult, Cpu)> {
    let meter = CpuMeter::start(server);
    let result = pg::pgbench(db, clients, duration, dir)?;
    Ok((result, meter.stop()))
}

async fn refreshers(addr: SocketAddr, users: &[String]) -> anyhow::Result<Vec<Box<dyn Client>>> {
    let mut clients: Vec<Box<dyn Client>> = Vec::new();
    for email in users {
        let tokens = login(addr, email).await?;
        let token = tokens["refresh_token"].as_str().context("refresh_token")?.to_string();
        clients.push(Box::new(Refresher { token }));
    }
    Ok(clients)
}

/// Refreshers and JWKS readers together, with login clients hammering at the same time.
async fn mixed(
    addr: SocketAddr,
    pid: u32,
    refresh_users: &[String],
    jwks_clients: usize,
    login_users: &[String],
    duration: Duration,
) -> anyhow::Result<report::Mixed> {
    let refresh = refreshers(addr, refresh_users).await?;
    let jwks: Vec<Box<dyn Client>> = (0..jwks_clients)
        .map(|_| Box::new(Getter { path: JWKS.into(), headers: vec![], expect: StatusCode::OK }) as Box<dyn Client>)
        .collect();
    let logins: Vec<Box<dyn Client>> =
        login_users.iter().map(|e| Box::new(LoggerIn::new(e, PASSWORD)) as Box<dyn Client>).collect();
    let meter = CpuMeter::start(pid);
    let (refresh, jwks, logins) =
        tokio::join!(load::run(addr, refresh, duration), load::run(addr, jwks, duration), async {
            if logins.is_empty() { None } else { Some(load::run(addr, logins, duration).await) }
        });
    Ok(report::Mixed { refresh, jwks, logins, cpu: meter.stop() })
}

/// Hashes per second all cores manage with latchkey's argon2 parameters,
/// measured here, outside the server.
fn argon2_ceiling(duration: Duration) -> f64 {
    use argon2::{PasswordHasher, password_hash::SaltString};
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let done = done.clone();
            std::thread::spawn(move || {
                let hasher = latchkey::argon2();
                while start.elapsed() < duration {
                    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
                    hasher.hash_password(PASSWORD.as_bytes(), &salt).expect("hash");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("hash thread");
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}
