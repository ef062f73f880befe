//! The benchmark's own Postgres database, and pgbench running latchkey's
//! rotation statement to show what the database alone allows.

use std::{path::Path, time::Duration};

use anyhow::{Context, bail};

pub fn admin_url() -> String {
    std::env::var("LATCHKEY_BENCH_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn psql(db: &str, sql: &str) -> anyhow::Result<String> {
    let out = std::process::Command::new("psql")
        .arg(format!("{}/{db}", admin_url()))
        .args(["-v", "ON_ERROR_STOP=1", "-qAtc", sql])
        .output()
        .context("running psql")?;
    if !out.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Runs a script of many statements (fed on standard input, which has no
/// length limit an argument has).
pub fn psql_script(db: &str, sql: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut child = std::process::Command::new("psql")
        .arg(format!("{}/{db}", admin_url()))
        .args(["-v", "ON_ERROR_STOP=1", "-qAt", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("running psql")?;
    child.stdin.take().context("psql's stdin")?.write_all(sql.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// A database that lives as long as the value.
pub struct BenchDb {
    pub name: String,
}

impl BenchDb {
    pub fn create() -> anyhow::Result<Self> {
        Self::create_named("main")
    }

    /// A second database of this run, `latchkey_bench_<what>_<pid>`.
    pub fn create_named(what: &str) -> anyhow::Result<Self> {
        let name = format!("latchkey_bench_{what}_{}", std::process::id());
        psql("postgres", &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
        psql("postgres", &format!("CREATE DATABASE {name}"))?;
        Ok(Self { name })
    }

    /// Without TLS: on loopback it only burns CPU on both ends. latchkey and
    /// pgbench both use this URL, so the comparison stays like for like.
    pub fn url(&self) -> String {
        format!("{}/{}?sslmode=disable", admin_url(), self.name)
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        let _ = psql("postgres", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

/// The rotation statement latchkey issues (src/store/rotation.rs), with
/// pgbench variables for its parameters. Each pgbench client walks its own
/// chain: it finds its session's live token once, then every transaction
/// rotates the token it was last given, exactly as a latchkey client does.
/// The successor hash is computed in SQL (latchkey computes it in Rust).
const SCRIPT: &str = r#"\if :round = 0
SELECT encode(hash, 'hex') AS cur FROM refresh_tokens
 WHERE used_at IS NULL AND session_id = (SELECT id FROM sessions WHERE user_id = (SELECT id FROM users WHERE email_key = 'pgbench@bench.invalid') ORDER BY id OFFSET :client_id LIMIT 1) \gset
\endif
\set round :round + 1
WITH old AS (
    UPDATE refresh_tokens SET used_at = now(), successor_hash = sha256(hash)
    WHERE hash = decode(:cur, 'hex') AND used_at IS NULL AND expires_at > now()
    RETURNING session_id, successor_hash
), sess AS (
    UPDATE sessions SET last_refreshed_at = now()
    FROM old
    WHERE sessions.id = old.session_id AND sessions.revoked_at IS NULL AND sessions.expires_at > now()
    RETURNING sessions.id, sessions.user_id, sessions.method, sessions.expires_at,
              sessions.status_list_id, sessions.status_idx
), ins AS (
    INSERT INTO refresh_tokens (hash, session_id, issued_at, expires_at)
    SELECT old.successor_hash, sess.id, now(), LEAST(now() + interval '7 days', sess.expires_at) FROM sess, old
    RETURNING hash, expires_at
)
SELECT encode(ins.hash, 'hex') AS cur, sess.id AS session_id, sess.user_id, sess.method, ins.expires_at,
       users.email, users.email_verified_at IS NOT NULL AS email_verified,
       sess.status_list_id, sess.status_idx
FROM sess CROSS JOIN ins JOIN users ON users.id = sess.user_id \gset
"#;

pub struct PgbenchResult {
    pub tps: f64,
    pub latency_ms: f64,
    pub failed: u64,
}

impl PgbenchResult {
    /// The average of two equally long runs.
    pub fn mean(a: &Self, b: &Self) -> Self {
        Self {
            tps: (a.tps + b.tps) / 2.0,
            latency_ms: (a.latency_ms + b.latency_ms) / 2.0,
            failed: a.failed + b.failed,
        }
    }
}

/// Vacuums (dead row versions out, statistics fresh) and checkpoints the
/// database, so the next scenario does not pay for the last one's writes.
pub fn settle(db: &BenchDb) -> anyhow::Result<()> {
    psql(&db.name, "VACUUM (ANALYZE)")?;
    psql(&db.name, "CHECKPOINT")?;
    Ok(())
}

/// Runs the rotation statement under pgbench at `clients` concurrency.
pub fn pgbench(db: &BenchDb, clients: usize, duration: Duration, dir: &Path) -> anyhow::Result<PgbenchResult> {
    let script = dir.join("rotate.sql");
    std::fs::write(&script, SCRIPT)?;
    let out = std::process::Command::new("pgbench")
        .args(["-n", "-M", "prepared", "-D", "round=0"])
        .args(["-c", &clients.to_string(), "-j", "2", "-T", &duration.as_secs().max(1).to_string()])
        .arg("-f")
        .arg(&script)
        .arg(db.url())
        .output()
        .context("running pgbench (from the PostgreSQL client tools)")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("pgbench failed: {}{}", text, String::from_utf8_lossy(&out.stderr));
    }
    let number = |prefix: &str| -> Option<f64> {
        text.lines().find(|l| l.starts_with(prefix))?.split('=').nth(1)?.split_whitespace().next()?.parse().ok()
    };
    Ok(PgbenchResult {
        tps: number("tps").context("no tps in pgbench output")?,
        latency_ms: number("latency average").unwrap_or(f64::NAN),
        failed: number("number of failed transactions").unwrap_or(0.0) as u64,
    })
}

/// What a seeded database holds.
pub struct Sizes {
    pub users: u64,
    pub sessions: u64,
    pub refresh_tokens: u64,
    pub bytes: u64,
    pub seeding: Duration,
}

impl Sizes {
    pub fn print(&self) {
        println!(
            "\nthe big database: {} users, {} sessions, {} refresh tokens, {:.2} GiB on disk (seeded by SQL in {:.0} s)",
            self.users,
            self.sessions,
            self.refresh_tokens,
            self.bytes as f64 / (1u64 << 30) as f64,
            self.seeding.as_secs_f64()
        );
    }
}

/// Inserts `rows` verified users, each with a live session holding a spent
/// refresh token and its live successor, as a busy deployment's tables
/// look. Ids are random UUIDs (latchkey's are time-ordered v7, which index
/// better): if anything, the pessimistic case.
pub fn seed_bulk(db: &BenchDb, rows: u64) -> anyhow::Result<Sizes> {
    let started = std::time::Instant::now();
    let hash = "$argon2id$v=19$m=12288,t=3,p=1$YmVuY2hzYWx0YmVuY2g$Y1Zf9v1Q3b0hG4o8mQ0b7m0yq1bX8d3ZpJ9lA2uJm5Q";
    psql(
        &db.name,
        &format!(
            "INSERT INTO users (id, email, email_key, email_verified_at, password_hash, created_at, updated_at)
             SELECT gen_random_uuid(), 'bulk' || i || '@bench.invalid', 'bulk' || i || '@bench.invalid',
                    now(), '{hash}', now() - interval '30 days', now()
             FROM generate_series(1, {rows}) AS i"
        ),
    )?;
    psql(
        &db.name,
        "INSERT INTO sessions (id, user_id, created_at, last_refreshed_at, expires_at, method)
         SELECT gen_random_uuid(), id, now() - interval '1 day', now(), now() + interval '29 days', 'pwd'
         FROM users WHERE email_key LIKE 'bulk%'",
    )?;
    psql(
        &db.name,
        "INSERT INTO refresh_tokens (hash, session_id, issued_at, expires_at, used_at, successor_hash)
         SELECT sha256(convert_to(id::text || ':0', 'UTF8')), id, now() - interval '1 day', now() + interval '6 days',
                now(), sha256(convert_to(id::text || ':1', 'UTF8'))
         FROM sessions;
         INSERT INTO refresh_tokens (hash, session_id, issued_at, expires_at)
         SELECT sha256(convert_to(id::text || ':1', 'UTF8')), id, now(), now() + interval '7 days'
         FROM sessions",
    )?;
    let count =
        |table: &str| -> anyhow::Result<u64> { Ok(psql(&db.name, &format!("SELECT count(*) FROM {table}"))?.parse()?) };
    Ok(Sizes {
        users: count("users")?,
        sessions: count("sessions")?,
        refresh_tokens: count("refresh_tokens")?,
        bytes: psql(&db.name, "SELECT pg_database_size(current_database())")?.parse()?,
        seeding: started.elapsed(),
    })
}
