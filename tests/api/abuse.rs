//! Abuse resistance (README "Abuse resistance"): shared rate limits, client IPs through
//! trusted proxies only, answers that reveal nothing, the password policy.

use serde_json::{Value, json};

use crate::helpers::{Options, PASSWORD, TestApp, assert_problem, response_shape as shape, spawn_with};

fn address() -> String {
    format!("user-{}@example.com", uuid::Uuid::new_v4().simple())
}

async fn login_from(app: &TestApp, ip: &str, email: &str, password: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/auth/login"))
        .header("x-forwarded-for", ip)
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
}

/// Asserts a 429 with its headers; returns the `Retry-After` seconds.
async fn assert_limited(resp: reqwest::Response, limit: u32, window_secs: u64) -> u64 {
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(String::from);
    let retry_after: u64 = header("retry-after").expect("Retry-After").parse().unwrap();
    assert!((1..=window_secs).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(header("ratelimit-limit").as_deref(), Some(limit.to_string().as_str()));
    assert_eq!(header("ratelimit-remaining").as_deref(), Some("0"));
    assert_eq!(header("ratelimit-reset"), Some(retry_after.to_string()));
    assert_problem(resp, 429, "rate_limited").await;
    retry_after
}

#[tokio::test]
async fn the_sixth_failed_login_is_refused_whatever_the_ip_and_whether_or_not_the_account_exists() {
    let app = spawn_with(Options::default().env("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1")).await;
    let known = address();
    assert_eq!(app.signup(&known, PASSWORD).await.status(), 202);
    let unknown = address();
    for email in [&known, &unknown] {
        for i in 0..5 {
            let resp = login_from(&app, &format!("198.51.100.{i}"), email, "Wrong7Tortoise").await;
            assert_problem(resp, 401, "invalid_credentials").await;
        }
        // Even the right password, from yet another address, waits out the window.
        assert_limited(login_from(&app, "203.0.113.9", email, PASSWORD).await, 5, 900).await;
    }
}

#[tokio::test]
async fn a_successful_login_clears_the_failures() {
    let app = spawn_with(Options::default()).await;
    let email = address();
    assert_eq!(app.signup(&email, PASSWORD).await.status(), 202);
    for _ in 0..4 {
        assert_eq!(app.login(&email, "Wrong7Tortoise").await.status(), 401);
    }
    assert_eq!(app.login(&email, PASSWORD).await.status(), 200);
    for _ in 0..5 {
        assert_eq!(app.login(&email, "Wrong7Tortoise").await.status(), 401);
    }
    assert_limited(app.login(&email, PASSWORD).await, 5, 900).await;
}

#[tokio::test]
async fn limits_are_shared_by_every_instance() {
    let a = spawn_with(Options::default()).await;
    let b = a.spawn_second().await;
    let email = address();
    assert_eq!(a.signup(&email, PASSWORD).await.status(), 202);
    for app in [&a, &b, &a, &b, &a] {
        assert_eq!(app.login(&email, "Wrong7Tortoise").await.status(), 401);
    }
    assert_limited(b.login(&email, PASSWORD).await, 5, 900).await;
    assert_limited(a.login(&email, PASSWORD).await, 5, 900).await;
}

#[tokio::test]
async fn a_forged_forwarded_header_from_an_untrusted_peer_changes_nothing() {
    // No trusted proxies: the socket peer is the client, whatever the headers say.
    let app = spawn_with(Options::default().env("LATCHKEY_RATE_LIMIT_LOGIN_PER_IP", 3)).await;
    for i in 0..3 {
        let resp = login_from(&app, &format!("192.0.2.{i}"), &address(), "Wrong7Tortoise").await;
        assert_eq!(resp.status(), 401);
    }
    let forged = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("forwarded", "for=192.0.2.200")
        .header("x-forwarded-for", "192.0.2.201")
        .json(&json!({ "email": address(), "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_limited(forged, 3, 900).await;
}

#[tokio::test]
async fn a_trusted_proxy_is_believed_and_its_clients_are_recorded() {
    let app = spawn_with(
        Options::default().env("LATCHKEY_TRUSTED_PROXIES", "127.0.0.0/8").env("LATCHKEY_RATE_LIMIT_LOGIN_PER_IP", 2),
    )
    .await;
    let email = address();
    assert_eq!(app.signup(&email, PASSWORD).await.status(), 202);
    // Each client behind the proxy has its own budget …
    for ip in ["192.0.2.1", "192.0.2.2", "192.0.2.3"] {
        assert_eq!(login_from(&app, &format!("6.6.6.6, {ip}"), &email, PASSWORD).await.status(), 200);
    }
    // … and is the IP sessions show (the rightmost untrusted hop, not the forged first entry).
    let tokens: Value = login_from(&app, "6.6.6.6, 192.0.2.1", &email, PASSWORD).await.json().await.unwrap();
    let list: Value = app
        .client
        .get(app.url("/v1/sessions"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["sessions"][0]["ip"], "192.0.2.1");
    assert_limited(login_from(&app, "192.0.2.1", &email, PASSWORD).await, 2, 900).await;
}

#[tokio::test]
async fn signups_are_limited_per_ip() {
    let app = spawn_with(Options::default().env("LATCHKEY_RATE_LIMIT_SIGNUP_PER_IP", 3)).await;
    for _ in 0..3 {
        assert_eq!(app.signup(&address(), PASSWORD).await.status(), 202);
    }
    let email = address();
    assert_limited(app.signup(&email, PASSWORD).await, 3, 3600).await;
    assert_problem(app.login(&email, PASSWORD).await, 401, "invalid_credentials").await;
}

#[tokio::test]
async fn mail_requests_are_limited_per_address_known_or_not() {
    let app = spawn_with(Options::default().env("LATCHKEY_RATE_LIMIT_MAIL_PER_ADDRESS", 3)).await;
    let known = address();
    assert_eq!(app.signup(&known, PASSWORD).await.status(), 202);
    for email in [known, address()] {
        for path in ["/v1/auth/password/forgot", "/v1/auth/verify-email/resend", "/v1/auth/password/forgot"] {
            assert_eq!(app.post(path, json!({ "email": email })).await.status(), 202);
        }
        let over = app.post("/v1/auth/verify-email/resend", json!({ "email": email.to_uppercase() })).await;
        assert_limited(over, 3, 3600).await;
    }
}

#[tokio::test]
async fn refreshes_have_a_per_session_budget() {
    let app = spawn_with(Options::default().env("LATCHKEY_RATE_LIMIT_REFRESH_PER_SESSION", 3)).await;
    let mut tokens = app.new_session().await;
    let other = app.new_session().await;
    for _ in 0..3 {
        let resp = app.refresh(tokens["refresh_token"].as_str().unwrap()).await;
        assert_eq!(resp.status(), 200);
        tokens = resp.json().await.unwrap();
    }
    assert_limited(app.refresh(tokens["refresh_token"].as_str().unwrap()).await, 3, 60).await;
    assert_eq!(app.refresh(other["refresh_token"].as_str().unwrap()).await.status(), 200, "per session");
}

#[tokio::test]
async fn login_failures_are_byte_identical_for_unknown_users_and_wrong_passwords() {
    let app = spawn_with(Options::default()).await;
    let known = address();
    assert_eq!(app.signup(&known, PASSWORD).await.status(), 202);
    let wrong = shape(app.login(&known, "Wrong7Tortoise").await).await;
    let unknown = shape(app.login(&address(), "Wrong7Tortoise").await).await;
    assert_eq!(wrong, unknown);
    assert_eq!(wrong.0, 401);
}

#[tokio::test]
async fn common_and_personal_passwords_are_refused_with_the_rule_named() {
    let app = spawn_with(Options::default()).await;
    for weak in ["Password1", "Qwerty123456", "Summer2024!"] {
        let body = assert_problem(app.signup(&address(), weak).await, 422, "invalid_password").await;
        assert_eq!(body["errors"][0]["rule"], "too_common", "{weak}: {body}");
    }
    let resp = app
        .post("/v1/auth/signup", json!({ "email": "quixotic7zephyr@example.com", "password": "Quixotic7Zephyr" }))
        .await;
    let body = assert_problem(resp, 422, "invalid_password").await;
    assert_eq!(body["errors"][0]["rule"], "too_common", "built from the address: {body}");
    // Long, Unicode and never truncated.
    let long = format!("Ünïcødé-{}-9x", "ж".repeat(100));
    assert_eq!(app.signup("long@example.com", &long).await.status(), 202);
    assert_eq!(app.login("long@example.com", &long).await.status(), 200);
    assert_eq!(app.login("long@example.com", &long[..long.len() - 1]).await.status(), 401);
}

#[tokio::test]
async fn oversized_headers_are_refused() {
    let app = spawn_with(Options::default()).await;
    let mut request = app.client.get(app.url("/healthz"));
    for i in 0..150 {
        request = request.header(format!("x-filler-{i}"), "x");
    }
    assert_eq!(request.send().await.unwrap().status(), 431);
}

#[tokio::test]
async fn a_client_that_stops_sending_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_with(Options::default().env("LATCHKEY_IDLE_TIMEOUT_SECS", 1)).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // Half a request, then silence (slowloris).
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: latchkey\r\n").await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buf)).await;
    let closed = matches!(read, Ok(Ok(0)) | Ok(Err(_)));
    assert!(closed, "the server closed the idle connection within 10 s: {read:?}");
}
