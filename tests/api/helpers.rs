//! Starts the real `latchkey` binary against a fresh database and talks to it
//! over HTTP. Every test gets its own Postgres database (or SQLite file), key
//! ring and port, so tests run in parallel and in any order.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

pub const PASSWORD: &str = "Correct1Horse";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A Postgres database created for one test and dropped after it.
struct TestDb {
    /// The server it is on, as `postgres://user@host:port`.
    admin: String,
    name: String,
}

fn admin_url() -> String {
    std::env::var("LATCHKEY_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

fn psql(admin: &str, sql: &str) -> std::io::Result<std::process::Output> {
    std::process::Command::new("psql")
        .arg(format!("{admin}/postgres"))
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
}

impl TestDb {
    fn create(admin: String) -> Self {
        let name = format!("lk_test_{}", uuid::Uuid::new_v4().simple());
        let out =
            psql(&admin, &format!("CREATE DATABASE {name}")).expect("running psql (is postgresql-client installed?)");
        assert!(
            out.status.success(),
            "cannot create a test database on {admin} — these tests need Postgres (start it with \
             `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { admin, name }
    }

    fn url(&self) -> String {
        format!("{}/{}", self.admin, self.name)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = psql(&self.admin, &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

/// What to start a server with.
#[derive(Clone)]
pub struct Options {
    pub backend: Backend,
    pub env: Vec<(String, String)>,
    /// Create the database on this server (`postgres://user@host:port`)
    /// instead of the machine's (a cluster the test started).
    pub postgres_on: Option<String>,
    /// Reach Postgres through this `host:port` (a test proxy or pooler) instead.
    pub postgres_via: Option<String>,
    /// Appended to the database URL as its query (`sslmode=…`).
    pub url_params: Option<String>,
    /// Start the server with this limit on open files (soft and hard).
    pub open_files: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            backend: Backend::Postgres,
            env: Vec::new(),
            postgres_on: None,
            postgres_via: None,
            url_params: None,
            open_files: None,
        }
    }
}

impl Options {
    pub fn backend(backend: Backend) -> Self {
        Self { backend, ..Self::default() }
    }

    pub fn postgres_on(mut self, admin_url: &str) -> Self {
        self.postgres_on = Some(admin_url.into());
        self
    }

    pub fn url_params(mut self, params: &str) -> Self {
        self.url_params = Some(params.into());
        self
    }

    pub fn postgres_via(mut self, addr: &str) -> Self {
        self.postgres_via = Some(addr.into());
        self
    }

    pub fn open_files(mut self, limit: u64) -> Self {
        self.open_files = Some(limit);
        self
    }

    pub fn env(mut self, key: &str, value: impl ToString) -> Self {
        self.env.push((key.into(), value.to_string()));
        self
    }
}

/// Files and database shared by every instance of one test.
struct Shared {
    dir: TempDir,
    // Held so the database lives as long as any instance using it.
    _db: Option<TestDb>,
    database_url: String,
    open_files: Option<u64>,
}

/// The server under test: the real binary in a process of its own, or (for
/// tests that move the clock) latchkey started in this process with a clock
/// the test holds.
enum Server {
    Process(Child),
    InProcess(Option<latchkey::Running>),
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    server: Server,
    /// The clock of an in-process server.
    clock: Option<Arc<latchkey::ManualClock>>,
    shared: Arc<Shared>,
    env: Vec<(String, String)>,
    logs: Arc<Mutex<Vec<String>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_with(Options::default()).await
}

pub async fn spawn_with(options: Options) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let (db, database_url) = match options.backend {
        Backend::Postgres => {
            let db = TestDb::create(options.postgres_on.clone().unwrap_or_else(admin_url));
            let mut url = match &options.postgres_via {
                Some(addr) => format!("postgres://postgres@{addr}/{}", db.name),
                None => db.url(),
            };
            if let Some(params) = &options.url_params {
                url = format!("{url}?{params}");
            }
            (Some(db), url)
        }
        Backend::Sqlite => (None, format!("sqlite://{}/latchkey.db?mode=rwc", dir.path().display())),
    };
    let shared = Arc::new(Shared { dir, _db: db, database_url, open_files: options.open_files });
    start(shared, options.env).await
}

/// Like `spawn_with`, but latchkey runs in this test's process on a clock
/// the test moves (`TestApp::advance`): for rules about time, without
/// waiting for it. Over real HTTP on a real port, against a real database.
pub async fn spawn_with_clock(options: Options) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let (db, database_url) = match options.backend {
        Backend::Postgres => {
            let db = TestDb::create(admin_url());
            let url = db.url();
            (Some(db), url)
        }
        Backend::Sqlite => (None, format!("sqlite://{}/latchkey.db?mode=rwc", dir.path().display())),
    };
    let shared = Arc::new(Shared { dir, _db: db, database_url, open_files: None });
    let mut env = environment(&shared, options.env);
    // Relative paths would land in the test's own working directory.
    env.push(("LATCHKEY_MAIL_DIR".into(), shared.dir.path().join("mail").display().to_string()));
    let config = latchkey::Config::from_vars(env.clone()).expect("a valid test configuration");
    let clock = Arc::new(latchkey::ManualClock::starting_at(chrono::Utc::now()));
    let running = latchkey::start(config, clock.clone()).await.expect("starting latchkey in process");
    TestApp {
        base: format!("http://{}", running.addr),
        client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
        server: Server::InProcess(Some(running)),
        clock: Some(clock),
        shared,
        env,
        logs: Arc::default(),
    }
}

/// The test defaults, with `extra` on top.
fn environment(shared: &Shared, extra: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("LATCHKEY_DATABASE_URL".into(), shared.database_url.clone()),
        ("LATCHKEY_BIND".into(), "127.0.0.1:0".into()),
        ("LATCHKEY_ISSUER".into(), "http://latchkey.test".into()),
        ("LATCHKEY_KEYS_DIR".into(), shared.dir.path().join("keys").display().to_string()),
        ("LATCHKEY_REQUIRE_EMAIL_VERIFICATION".into(), "false".into()),
        ("LATCHKEY_KEYS_RELOAD_MS".into(), "100".into()),
        ("LATCHKEY_DB_MAX_CONNECTIONS".into(), "8".into()),
        ("LATCHKEY_LOG".into(), "info,sqlx=warn".into()),
        // Tests sign many users up from 127.0.0.1: the per-IP and per-session
        // budgets are raised, not removed, so every check still runs. The
        // per-account login limit keeps its default of 5.
        ("LATCHKEY_RATE_LIMIT_LOGIN_PER_IP".into(), "10000".into()),
        ("LATCHKEY_RATE_LIMIT_SIGNUP_PER_IP".into(), "10000".into()),
        ("LATCHKEY_RATE_LIMIT_MAIL_PER_IP".into(), "10000".into()),
        ("LATCHKEY_RATE_LIMIT_MAIL_PER_ADDRESS".into(), "100".into()),
        ("LATCHKEY_RATE_LIMIT_SIGNUP_PER_ADDRESS".into(), "100".into()),
        // Every test client connects from 127.0.0.1.
        ("LATCHKEY_MAX_CONNECTIONS_PER_IP".into(), "1000".into()),
        ("LATCHKEY_RATE_LIMIT_REFRESH_PER_SESSION".into(), "100000".into()),
    ];
    for (k, v) in extra {
        env.retain(|(key, _)| *key != k);
        env.push((k, v));
    }
    env
}

async fn start(shared: Arc<Shared>, extra: Vec<(String, String)>) -> TestApp {
    let env = environment(&shared, extra);
    let mut command = latchkey_command(&shared.dir.path().join("cwd"), &env);
    if let Some(limit) = shared.open_files {
        // SAFETY: only setrlimit, which is async-signal-safe, runs between fork and exec.
        unsafe {
            command.pre_exec(move || {
                let rlimit = libc::rlimit { rlim_cur: limit, rlim_max: limit };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }
    let mut child =
        command.stdout(Stdio::piped()).stderr(Stdio::inherit()).kill_on_drop(true).spawn().expect("starting latchkey");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let logs: Arc<Mutex<Vec<String>>> = Arc::default();
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("reading server output") {
            eprintln!("[server] {line}");
            logs.lock().unwrap().push(line.clone());
            if let Some(rest) = line.split("listening on http://").nth(1) {
                return rest.split_whitespace().next().expect("address").to_string();
            }
        }
        panic!("latchkey exited before listening");
    })
    .await
    .expect("latchkey did not start within 60 s");
    // Keep draining the output so the server never blocks on a full pipe.
    let sink = logs.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("[server] {line}");
            sink.lock().unwrap().push(line);
        }
    });
    TestApp {
        base: format!("http://{addr}"),
        client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
        server: Server::Process(child),
        clock: None,
        shared,
        env,
        logs,
    }
}

/// The `latchkey` binary with a clean `LATCHKEY_*` environment.
pub fn latchkey_command(cwd: &Path, env: &[(String, String)]) -> Command {
    std::fs::create_dir_all(cwd).expect("cwd");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    for (key, _) in std::env::vars() {
        if key.starts_with("LATCHKEY_") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(cwd).envs(env.iter().map(|(k, v)| (k, v)));
    cmd
}

impl TestApp {
    /// A second instance on the same database and key ring.
    pub async fn spawn_second(&self) -> TestApp {
        start(self.shared.clone(), self.env.clone()).await
    }

    /// The server's working directory (where relative paths such as `data/mail` land).
    pub fn work_dir(&self) -> PathBuf {
        self.shared.dir.path().join("cwd")
    }

    pub fn keys_dir(&self) -> PathBuf {
        self.shared.dir.path().join("keys")
    }

    /// Runs a `latchkey` subcommand with this server's configuration.
    pub async fn cli(&self, args: &[&str]) -> std::process::Output {
        self.cli_with(&[], args).await
    }

    /// `cli` with some settings changed.
    pub async fn cli_with(&self, changed: &[(&str, &str)], args: &[&str]) -> std::process::Output {
        let mut env = self.env.clone();
        for (key, value) in changed {
            env.retain(|(k, _)| k != key);
            env.push((key.to_string(), value.to_string()));
        }
        latchkey_command(&self.work_dir(), &env).args(args).output().await.expect("running latchkey")
    }

    /// The URL of this test's database on its server (not through a proxy or pooler).
    pub fn direct_database_url(&self) -> String {
        self.shared._db.as_ref().expect("a Postgres test").url()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.client.post(self.url(path)).json(&body).send().await.expect("request")
    }

    pub async fn signup(&self, email: &str, password: &str) -> reqwest::Response {
        self.post("/v1/auth/signup", json!({ "email": email, "password": password })).await
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.post("/v1/auth/login", json!({ "email": email, "password": password })).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.post("/v1/auth/refresh", json!({ "refresh_token": refresh_token })).await
    }

    pub async fn me(&self, access_token: &str) -> reqwest::Response {
        self.client.get(self.url("/v1/users/me")).bearer_auth(access_token).send().await.expect("request")
    }

    /// Signs up and logs in a fresh user; returns the token response.
    pub async fn new_session(&self) -> Value {
        let email = format!("user-{}@example.com", uuid::Uuid::new_v4().simple());
        self.new_session_for(&email).await
    }

    pub async fn new_session_for(&self, email: &str) -> Value {
        assert_eq!(self.signup(email, PASSWORD).await.status(), 202);
        let resp = self.login(email, PASSWORD).await;
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    pub async fn jwks(&self) -> jsonwebtoken::jwk::JwkSet {
        let resp = self.client.get(self.url("/.well-known/jwks.json")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    /// Waits until the served JWKS satisfies `ready` (hot reload is polled).
    pub async fn wait_for_jwks(&self, ready: impl Fn(&jsonwebtoken::jwk::JwkSet) -> bool) -> jsonwebtoken::jwk::JwkSet {
        for _ in 0..100 {
            let set = self.jwks().await;
            if ready(&set) {
                return set;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the JWKS never changed as expected");
    }

    /// The PEM of a private key in this server's ring (for forging test tokens).
    pub fn private_key_pem(&self, kid: &str) -> Vec<u8> {
        std::fs::read(self.keys_dir().join(format!("{kid}.pem"))).expect("private key file")
    }

    /// Runs SQL on this test's Postgres database; returns psql's unaligned output.
    pub fn sql(&self, query: &str) -> String {
        let db = self.shared._db.as_ref().expect("a Postgres test");
        let out = std::process::Command::new("psql")
            .arg(db.url())
            .args(["-v", "ON_ERROR_STOP=1", "-qAtc", query])
            .output()
            .expect("psql");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Waits for a log line containing `needle`; returns it.
    pub async fn wait_for_log(&self, needle: &str) -> String {
        for _ in 0..200 {
            if let Some(line) = self.logs.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server never logged {needle:?}");
    }

    /// Every line the server has logged so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Verifies `email` (mail written to files, the default) by posting the
    /// token of the logged link, with the helpers' password.
    pub async fn verify_by_hand(&self, email: &str) {
        let mut token = None;
        for _ in 0..200 {
            token = self
                .logs()
                .iter()
                .find(|l| l.contains(email) && l.contains("verify-email?token="))
                .map(|line| line.split("?token=").nth(1).unwrap().split_whitespace().next().unwrap().to_string());
            if token.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let token = token.unwrap_or_else(|| panic!("no verification link for {email} was logged"));
        let resp = self.post("/v1/auth/verify-email", json!({ "token": token, "password": PASSWORD })).await;
        assert_eq!(resp.status(), 200, "verifying {email}");
    }

    /// What time it is for the server: its clock if the test holds one.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        use latchkey::Clock;
        self.clock.as_ref().map_or_else(chrono::Utc::now, |clock| clock.now())
    }

    /// Moves the in-process server's clock forward.
    pub fn advance(&self, by: chrono::Duration) {
        self.clock.as_ref().expect("a server started with spawn_with_clock").advance(by);
    }

    fn child(&mut self) -> &mut Child {
        match &mut self.server {
            Server::Process(child) => child,
            Server::InProcess(_) => panic!("an in-process server has no process"),
        }
    }

    pub fn pid(&self) -> u32 {
        match &self.server {
            Server::Process(child) => child.id().expect("server still running"),
            Server::InProcess(_) => panic!("an in-process server has no process"),
        }
    }

    /// Waits for the server process to exit; returns its exit status.
    pub async fn wait(&mut self) -> std::process::ExitStatus {
        tokio::time::timeout(Duration::from_secs(20), self.child().wait()).await.expect("server exits").unwrap()
    }

    pub fn kill(&mut self) {
        match &mut self.server {
            Server::Process(child) => {
                let _ = child.start_kill();
            }
            Server::InProcess(running) => {
                if let Some(running) = running.take() {
                    running.abort();
                }
            }
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends `n` requests at once, each on its own connection: every client
/// connects first, then all wait at a barrier and are released together.
/// `request(i, client)` builds the i-th request; the statuses come back in order.
pub async fn burst<F, Fut>(n: usize, base: &str, request: F) -> Vec<u16>
where
    F: Fn(usize, reqwest::Client) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = reqwest::Response> + Send,
{
    burst_with(n, base, move |i, client| {
        let response = request(i, client);
        async move { response.await.status().as_u16() }
    })
    .await
}

/// `burst`, keeping whatever `request` makes of each answer.
pub async fn burst_with<F, Fut, T>(n: usize, base: &str, request: F) -> Vec<T>
where
    F: Fn(usize, reqwest::Client) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = T> + Send,
    T: Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (barrier, request, base) = (barrier.clone(), request.clone(), base.to_string());
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .pool_max_idle_per_host(1)
                    .build()
                    .unwrap();
                // The connection is open before the barrier falls.
                client.get(format!("{base}/healthz")).send().await.expect("warm-up request");
                barrier.wait().await;
                request(i, client).await
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(n);
    for task in tasks {
        answers.push(task.await.expect("burst task"));
    }
    answers
}

/// How many of `statuses` are `status`.
pub fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

/// Asserts a problem+json response with `status` and `code`; returns its body.
pub async fn assert_problem(resp: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(resp.status(), status, "status");
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert!(content_type.starts_with("application/problem+json"), "content-type {content_type:?}");
    let body: Value = resp.json().await.expect("problem body");
    assert_eq!(body["code"], code, "body {body}");
    assert_eq!(body["status"], status, "body {body}");
    assert!(body["title"].is_string() && body["detail"].is_string(), "body {body}");
    body
}

/// Status, headers (sorted, all but `date`) and body of a response: two
/// answers that must not differ compare equal on this.
pub async fn response_shape(resp: reqwest::Response) -> (u16, Vec<(String, String)>, bytes::Bytes) {
    let status = resp.status().as_u16();
    let mut headers: Vec<_> = resp
        .headers()
        .iter()
        .filter(|(name, _)| *name != "date")
        .map(|(name, value)| {
            let value = value.to_str().unwrap().to_string();
            // A fresh random request id says nothing; any other value of it would count.
            let fresh = name == "x-request-id" && value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit());
            (name.to_string(), if fresh { "<random request id>".into() } else { value })
        })
        .collect();
    headers.sort();
    (status, headers, resp.bytes().await.unwrap())
}

/// Runs an async test body on both backends.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn postgres() {
                super::$name($crate::helpers::Backend::Postgres).await
            }

            #[tokio::test]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
        }
    };
}
