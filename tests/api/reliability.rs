//! Reliability (README "Choices", reliability): database outages, SIGKILL, SIGTERM, cleanup.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use serde_json::Value;
use tokio::{net::TcpListener, task::JoinHandle};

use crate::helpers::{Options, assert_problem, spawn_app, spawn_with};

/// A TCP forwarder to Postgres that a test can cut and restore, to look like
/// a database restart from latchkey's side.
struct Proxy {
    addr: String,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (flag, tasks) = (up.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !flag.load(Ordering::SeqCst) {
                    continue; // dropped: connection refused, in effect
                }
                tasks.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                }));
            }
        });
        Self { addr, up, links }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn database_outage_answers_503_and_recovers_without_a_restart() {
    let proxy = Proxy::start("127.0.0.1:5432").await;
    let app = spawn_with(Options::default().postgres_via(&proxy.addr)).await;
    let tokens = app.new_session().await;
    let refresh = tokens["refresh_token"].as_str().unwrap();

    proxy.down();
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_problem(ready, 503, "service_unavailable").await;
    assert_problem(app.refresh(refresh).await, 503, "service_unavailable").await;
    // Liveness does not depend on the database.
    assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status(), 200);

    proxy.restore();
    let mut recovered = false;
    for _ in 0..60 {
        if app.client.get(app.url("/readyz")).send().await.unwrap().status() == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(recovered, "readyz never came back");
    // Nothing was half-done during the outage: the token still rotates.
    assert_eq!(app.refresh(refresh).await.status(), 200);
}

#[tokio::test]
async fn sigkill_during_refreshes_leaves_the_session_usable() {
    let mut app = spawn_app().await;
    let tokens = app.new_session().await;
    let latest = Arc::new(Mutex::new(tokens["refresh_token"].as_str().unwrap().to_string()));

    let (client, url, held) = (app.client.clone(), app.url("/v1/auth/refresh"), latest.clone());
    let refresher = tokio::spawn(async move {
        loop {
            let token = held.lock().unwrap().clone();
            let body = serde_json::json!({ "refresh_token": token });
            let Ok(resp) = client.post(&url).json(&body).send().await else { break };
            let Ok(tokens) = resp.json::<Value>().await else { break };
            *held.lock().unwrap() = tokens["refresh_token"].as_str().unwrap().to_string();
        }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    app.kill();
    refresher.await.unwrap();

    // Whatever the kill interrupted, the last token the client holds still
    // works: either it never rotated, or its rotation committed and this is
    // a retry inside the grace window.
    let second = app.spawn_second().await;
    let last = latest.lock().unwrap().clone();
    let resp = second.refresh(&last).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert_eq!(second.sql("SELECT count(*) FROM refresh_tokens WHERE used_at IS NULL"), "1");
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_then_exits_cleanly() {
    // One hash at a time: eight logins queue for a couple of hundred
    // milliseconds, so SIGTERM lands while most of them are received but
    // unanswered. (Hashing runs at idle priority: on a machine busy with
    // other work the queue drains slowly, so the batch stays well inside the
    // 10 s drain window.)
    // Eight accounts: concurrent password checks of one account all count
    // toward its failed-login limit (5) before any of them is answered.
    let mut app = spawn_with(Options::default().env("LATCHKEY_HASH_CONCURRENCY", 1)).await;
    let emails: Vec<String> = (0..8).map(|i| format!("drain-{i}@example.com")).collect();
    for email in &emails {
        app.signup(email, crate::helpers::PASSWORD).await;
    }
    let logins: Vec<_> = emails.iter().map(|email| app.login(email, crate::helpers::PASSWORD)).collect();
    let pid = app.pid().to_string();
    let (results, _) = tokio::join!(futures::future::join_all(logins), async {
        tokio::time::sleep(Duration::from_millis(60)).await;
        std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    });
    for resp in results {
        assert_eq!(resp.status(), 200);
    }
    assert!(app.wait().await.success());
}

#[tokio::test]
async fn expired_tokens_and_sessions_are_cleaned_up() {
    let app = spawn_with(
        Options::default()
            .env("LATCHKEY_REFRESH_TOKEN_TTL_SECS", 1)
            .env("LATCHKEY_SESSION_MAX_AGE_SECS", 2)
            .env("LATCHKEY_CLEANUP_INTERVAL_SECS", 1),
    )
    .await;
    let tokens = app.new_session().await;
    app.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    let live = app.new_session().await; // revoked below: its token goes at once
    let resp = app
        .client
        .post(app.url("/v1/auth/logout"))
        .bearer_auth(live["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    // Mailed link tokens: one expired two days ago goes, a live one stays.
    app.sql(
        "INSERT INTO email_tokens (hash, user_id, purpose, created_at, expires_at) \
         SELECT '\\x01', id, 'verify_email', now() - interval '3 days', now() - interval '2 days' FROM users LIMIT 1; \
         INSERT INTO email_tokens (hash, user_id, purpose, created_at, expires_at) \
         SELECT '\\x02', id, 'reset_password', now(), now() + interval '1 hour' FROM users LIMIT 1",
    );

    for _ in 0..40 {
        let left = "SELECT (SELECT count(*) FROM refresh_tokens) + (SELECT count(*) FROM sessions) \
                    + (SELECT count(*) FROM email_tokens WHERE hash = '\\x01')";
        if app.sql(left) == "0" {
            assert_eq!(app.sql("SELECT count(*) FROM email_tokens WHERE hash = '\\x02'"), "1");
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("expired rows were never removed");
}
