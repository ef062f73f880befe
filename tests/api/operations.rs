//! Running it: metrics, request ids and log formats (README "Operations").

use std::{collections::HashMap, time::Duration};

use serde_json::{Value, json};

use crate::{
    helpers::{Options, PASSWORD, TestApp, spawn_app, spawn_with},
    smtp::free_port,
};

/// One sample of the exposition text: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: HashMap<String, String>,
    value: f64,
}

fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("name and value");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').expect("label=value");
                    (k.to_string(), v.trim_matches('"').to_string())
                })
                .collect();
            Sample { name: name.into(), labels, value: value.parse().expect("a number") }
        })
        .collect()
}

/// The value of the series `name` whose labels include `labels` (0 if none).
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
        .map(|s| s.value)
        .sum()
}

async fn scrape(app: &TestApp, base: &str) -> String {
    let resp = app.client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    resp.text().await.unwrap()
}

/// Scrapes until `ready` holds (background work: mail, key reloads).
async fn scrape_until(app: &TestApp, ready: impl Fn(&[Sample]) -> bool) -> String {
    for _ in 0..100 {
        let text = scrape(app, &app.base).await;
        if ready(&samples(&text)) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the metrics never showed it:\n{}", scrape(app, &app.base).await);
}

#[tokio::test]
async fn metrics_count_what_happened_by_route_template_and_never_name_anyone() {
    let app = spawn_with(Options::default().env("LATCHKEY_APP_URL", "http://app.test")).await;
    let email = format!("metrics-{}@example.com", uuid::Uuid::new_v4().simple());
    let tokens = app.new_session_for(&email).await;
    let (access, refresh) = (tokens["access_token"].as_str().unwrap(), tokens["refresh_token"].as_str().unwrap());
    // A refresh, a reuse of the spent token, a wrong password, a limit reached.
    let next: Value = app.refresh(refresh).await.json().await.unwrap();
    let again: Value = app.refresh(next["refresh_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(app.refresh(refresh).await.status(), 401, "reuse");
    let other = app.new_session().await;
    let other_email = format!("limited-{}@example.com", uuid::Uuid::new_v4().simple());
    assert_eq!(app.signup(&other_email, PASSWORD).await.status(), 202);
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(app.login(&other_email, "Wrong7Guess").await.status().as_u16());
    }
    assert!(statuses.contains(&401) && statuses.contains(&429), "{statuses:?}");
    // A session by id (a template), a path nobody routes, a logout, a reset mail.
    let session = uuid::Uuid::now_v7();
    let path = format!("/v1/sessions/{session}");
    let other_access = other["access_token"].as_str().unwrap();
    let resp = app.client.delete(app.url(&path)).bearer_auth(other_access).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(app.client.get(app.url("/no/such/place-ada")).send().await.unwrap().status(), 404);
    let resp = app.client.post(app.url("/v1/auth/logout")).bearer_auth(other_access).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(app.post("/v1/auth/password/forgot", json!({ "email": email })).await.status(), 202);
    // The key ring reloads when a key is added.
    assert!(app.cli(&["keys", "rotate"]).await.status.success());

    let text = scrape_until(&app, |s| {
        value(s, "latchkey_mail_sent_total", &[("result", "sent")]) >= 1.0
            && value(s, "latchkey_key_ring_reloads_total", &[]) >= 1.0
    })
    .await;
    let s = samples(&text);
    let requests = |route: &str, method: &str, status: &str| {
        value(&s, "latchkey_http_requests_total", &[("route", route), ("method", method), ("status", status)])
    };
    assert_eq!(value(&s, "latchkey_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), 1.0);
    assert!(requests("/v1/auth/login", "POST", "200") >= 2.0);
    assert!(requests("/v1/auth/login", "POST", "401") >= 1.0);
    assert!(requests("/v1/auth/login", "POST", "429") >= 1.0);
    assert_eq!(requests("/v1/auth/refresh", "POST", "200"), 2.0);
    assert_eq!(requests("/v1/sessions/{id}", "DELETE", "404"), 1.0);
    assert_eq!(requests("unmatched", "GET", "404"), 1.0);
    let bucket = |le: &str| {
        value(&s, "latchkey_http_request_duration_seconds_bucket", &[("route", "/v1/auth/login"), ("le", le)])
    };
    assert!(bucket("+Inf") >= 4.0 && bucket("+Inf") >= bucket("0.001"), "a histogram per route");
    assert!(value(&s, "latchkey_logins_total", &[("method", "password"), ("result", "ok")]) >= 2.0);
    assert!(value(&s, "latchkey_logins_total", &[("method", "password"), ("result", "invalid_credentials")]) >= 1.0);
    assert!(value(&s, "latchkey_logins_total", &[("method", "password"), ("result", "rate_limited")]) >= 1.0);
    assert_eq!(value(&s, "latchkey_refreshes_total", &[("result", "ok")]), 2.0);
    assert_eq!(value(&s, "latchkey_refreshes_total", &[("result", "reused")]), 1.0);
    assert_eq!(value(&s, "latchkey_sessions_revoked_total", &[("reason", "refresh_token_reused")]), 1.0);
    assert_eq!(value(&s, "latchkey_sessions_revoked_total", &[("reason", "logout")]), 1.0);
    assert!(value(&s, "latchkey_rate_limited_total", &[("rule", "login-account")]) >= 1.0);
    assert!(s.iter().any(|x| x.name == "latchkey_mail_queue_depth"));
    assert!(s.iter().any(|x| x.name == "latchkey_db_pool_connections" && x.labels["state"] == "idle"));
    assert!(s.iter().any(|x| x.name == "latchkey_db_pool_connections" && x.labels["state"] == "in_use"));
    // No label holds a person, an address, a token or a raw path.
    let secrets = [
        email.as_str(),
        other_email.as_str(),
        access,
        refresh,
        again["refresh_token"].as_str().unwrap(),
        &session.to_string(),
        "place-ada",
        "127.0.0.1",
    ];
    for secret in secrets {
        assert!(!text.contains(secret), "/metrics shows {secret}");
    }
}

#[tokio::test]
async fn metrics_can_move_to_a_listener_of_their_own_or_be_off() {
    let port = free_port();
    let app = spawn_with(Options::default().env("LATCHKEY_METRICS_BIND", format!("127.0.0.1:{port}"))).await;
    app.wait_for_log(&format!("metrics: http://127.0.0.1:{port}/metrics only")).await;
    assert_eq!(app.client.get(app.url("/metrics")).send().await.unwrap().status(), 404, "not on the main listener");
    app.new_session().await;
    let text = scrape(&app, &format!("http://127.0.0.1:{port}")).await;
    assert!(value(&samples(&text), "latchkey_http_requests_total", &[("route", "/v1/auth/login")]) >= 1.0);
    let other = app.client.get(format!("http://127.0.0.1:{port}/v1/auth/login")).send().await.unwrap();
    assert_eq!(other.status(), 404, "the metrics listener serves nothing else");

    let off = spawn_with(Options::default().env("LATCHKEY_METRICS_ENABLED", "false")).await;
    assert_eq!(off.client.get(off.url("/metrics")).send().await.unwrap().status(), 404);
}

fn is_generated(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

async fn request_id_of(app: &TestApp, sent: Option<&str>) -> String {
    let mut req = app.client.get(app.url("/healthz"));
    if let Some(id) = sent {
        req = req.header("x-request-id", id);
    }
    let resp = req.send().await.unwrap();
    resp.headers()["x-request-id"].to_str().unwrap().to_string()
}

#[tokio::test]
async fn every_answer_carries_a_request_id_taken_only_when_plain() {
    let app = spawn_app().await;
    assert_eq!(request_id_of(&app, Some("lb-7f3a.2_x")).await, "lb-7f3a.2_x");
    let long = "a".repeat(65);
    for sent in [None, Some("has space"), Some("<script>"), Some("ünïcode"), Some(long.as_str()), Some("")] {
        let got = request_id_of(&app, sent).await;
        assert!(is_generated(&got), "{sent:?} → {got}");
    }
    assert_ne!(request_id_of(&app, None).await, request_id_of(&app, None).await);
    // On errors and on the routes answered ahead of the rest too.
    let resp = app.post("/v1/auth/login", json!({})).await;
    assert!(is_generated(resp.headers()["x-request-id"].to_str().unwrap()));
    let resp = app.client.get(app.url("/.well-known/jwks.json")).send().await.unwrap();
    assert!(is_generated(resp.headers()["x-request-id"].to_str().unwrap()));
}

/// A wrong password at debug for the hashing target: its log line is
/// written inside the request, so it carries the id.
async fn logged_login(app: &TestApp, id: &str) {
    let body = json!({ "email": "nobody@example.com", "password": "Wrong7Guess" });
    let resp = app.client.post(app.url("/v1/auth/login")).header("x-request-id", id).json(&body).send().await;
    assert_eq!(resp.unwrap().status(), 401);
}

#[tokio::test]
async fn log_lines_of_a_request_carry_its_id_as_text_and_as_json() {
    let text = spawn_with(Options::default().env("LATCHKEY_LOG", "info,latchkey::hashing=debug")).await;
    logged_login(&text, "text-line-1").await;
    let line = text.wait_for_log("checking a password").await;
    assert!(line.contains("request_id=text-line-1"), "{line}");

    let json_logs = spawn_with(
        Options::default().env("LATCHKEY_LOG", "info,latchkey::hashing=debug").env("LATCHKEY_LOG_FORMAT", "json"),
    )
    .await;
    logged_login(&json_logs, "json-line-1").await;
    json_logs.wait_for_log("checking a password").await;
    let lines = json_logs.logs();
    for line in &lines {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
    }
    let checked = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["fields"]["message"] == "checking a password")
        .expect("the line");
    let spans = checked["spans"].as_array().expect("the spans of the line");
    assert!(spans.iter().any(|s| s["request_id"] == "json-line-1"), "{checked}");
}

#[tokio::test]
async fn a_5xx_logs_its_cause_with_the_request_id_and_answers_only_the_id() {
    let app = spawn_app().await;
    let email = format!("broken-{}@example.com", uuid::Uuid::new_v4().simple());
    assert_eq!(app.signup(&email, PASSWORD).await.status(), 202);
    // A login can no longer record itself.
    app.sql("DROP TABLE security_events CASCADE");
    let body = json!({ "email": email, "password": PASSWORD });
    let resp = app.client.post(app.url("/v1/auth/login")).header("x-request-id", "broken-1").json(&body).send().await;
    let resp = resp.unwrap();
    assert_eq!(resp.status(), 500);
    let problem: Value = resp.json().await.unwrap();
    assert_eq!(problem["code"], "internal_error");
    let shown = problem.to_string();
    assert!(shown.contains("broken-1"), "{shown}");
    assert!(!shown.contains("security_events") && !shown.contains("relation"), "{shown}");
    let line = app.wait_for_log("internal error").await;
    assert!(line.contains("broken-1") && line.contains("security_events"), "{line}");
}

/// The value of cookie `name` (with or without its `__Host-` prefix) set by `resp`.
fn set_cookie(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| c.split(';').next()?.split_once('='))
        .find(|(n, _)| n.trim_start_matches("__Host-") == name)
        .map(|(_, v)| v.to_string())
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

/// Every secret a user, the operator or the provider hands latchkey on a
/// whole journey, at `LATCHKEY_LOG=trace`: none of them may reach the log.
#[tokio::test]
async fn a_whole_journey_at_trace_level_logs_no_secret() {
    use crate::{
        oidc::{CLIENT_SECRET, Provider, param},
        smtp::SmtpServer,
    };
    const SMTP_PASSWORD: &str = "smtp-Pa55word-never-logged";
    const VERIFY: &str = "http://app.test/verify-email?token=";
    const RESET: &str = "http://app.test/reset-password?token=";
    let smtp = SmtpServer::start_with_login("latchkey-mailer", SMTP_PASSWORD).await;
    let provider = Provider::start().await;
    let options = provider
        .configure(Options::default())
        .env("LATCHKEY_LOG", "trace")
        .env("LATCHKEY_REQUIRE_EMAIL_VERIFICATION", "true")
        .env("LATCHKEY_SMTP_URL", smtp.url());
    let app = spawn_with(options).await;
    let mut secrets: Vec<String> = vec![PASSWORD.into(), CLIENT_SECRET.into(), SMTP_PASSWORD.into()];
    let token_of = |v: &Value, field: &str| v[field].as_str().unwrap_or_else(|| panic!("{field} in {v}")).to_string();

    // Sign up, verify (the link's token), log in, refresh.
    let email = format!("journey-{}@example.com", uuid::Uuid::new_v4().simple());
    assert_eq!(app.signup(&email, PASSWORD).await.status(), 202);
    let verify = smtp.nth(&email, 1).await.token(VERIFY);
    assert_eq!(app.post("/v1/auth/verify-email", json!({ "token": verify, "password": PASSWORD })).await.status(), 200);
    let tokens: Value = app.login(&email, PASSWORD).await.json().await.unwrap();
    let next: Value = app.refresh(&token_of(&tokens, "refresh_token")).await.json().await.unwrap();
    secrets.extend([verify, token_of(&tokens, "access_token"), token_of(&tokens, "refresh_token")]);
    secrets.extend([token_of(&next, "access_token"), token_of(&next, "refresh_token")]);

    // Cookie mode: log in and refresh through the cookies and the CSRF header.
    let body = json!({ "email": email, "password": PASSWORD, "token_delivery": "cookie" });
    let origin = "http://latchkey.test";
    let resp = app.client.post(app.url("/v1/auth/login")).header("origin", origin).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let (refresh_cookie, csrf) = (set_cookie(&resp, "lk_refresh"), set_cookie(&resp, "lk_csrf"));
    let cookie_tokens: Value = resp.json().await.unwrap();
    let resp = app
        .client
        .post(app.url("/v1/auth/refresh"))
        .header("origin", origin)
        .header("cookie", format!("__Host-lk_refresh={refresh_cookie}; __Host-lk_csrf={csrf}"))
        .header("x-csrf-token", &csrf)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    secrets.extend([refresh_cookie, csrf, token_of(&cookie_tokens, "access_token"), set_cookie(&resp, "lk_refresh")]);

    // Forgotten password: the reset link's token and the new password; then a change.
    assert_eq!(app.post("/v1/auth/password/forgot", json!({ "email": email })).await.status(), 202);
    let reset = smtp.nth(&email, 2).await.token(RESET);
    let reset_to = "Reset9Journey-secret";
    let resp = app.post("/v1/auth/password/reset", json!({ "token": reset, "new_password": reset_to })).await;
    assert_eq!(resp.status(), 200);
    let after: Value = app.login(&email, reset_to).await.json().await.unwrap();
    let changed_to = "Changed9Journey-secret";
    let change = json!({ "current_password": reset_to, "new_password": changed_to });
    let access = token_of(&after, "access_token");
    let resp = app.client.post(app.url("/v1/auth/password/change")).bearer_auth(&access).json(&change).send().await;
    assert!(resp.unwrap().status().is_success());
    secrets.extend([reset, reset_to.into(), changed_to.into(), access.clone(), token_of(&after, "refresh_token")]);

    // Google: the login code, the tokens it is exchanged for.
    let back = app.google_sign_in(&provider, "gwen@example.com").await;
    let code = param(&back, "code").expect("a login code");
    let google: Value = app.oauth_exchange(&code).await.json().await.unwrap();
    secrets.extend([code, token_of(&google, "access_token"), token_of(&google, "refresh_token")]);

    // Account deletion, with the password.
    let resp = app.client.delete(app.url("/v1/users/me")).bearer_auth(&access).json(&json!({ "password": changed_to }));
    assert_eq!(resp.send().await.unwrap().status(), 204);

    // The mails about the reset and the change went out through the SMTP login too.
    for _ in 0..100 {
        if smtp.received_by(&email).len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(smtp.received_by(&email).len() >= 4, "verification, reset, two notices of a change");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logs = app.logs();
    // Trace and debug lines of latchkey's own are in it (its dependencies write few).
    assert!(logs.iter().any(|l| l.contains(" TRACE ")) && logs.iter().any(|l| l.contains(" DEBUG ")), "at trace level");
    assert!(logs.iter().any(|l| l.contains("mail sent")), "the mail lines are in it");
    let all = logs.join("\n");
    for secret in &secrets {
        assert!(secret.len() >= 8, "a real secret: {secret}");
        if let Some(line) = logs.iter().find(|l| l.contains(secret.as_str())) {
            panic!("a secret reached the log: {line}");
        }
    }
    assert!(!all.contains(SMTP_PASSWORD));
}
