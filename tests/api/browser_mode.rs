//! Cookie mode, CSRF and CORS over plain HTTP: what a browser would send,
//! spelled out, including what an attacker's page would send.

use reqwest::{Response, header::SET_COOKIE};
use serde_json::{Value, json};

use crate::helpers::{Options, PASSWORD, TestApp, assert_problem, spawn_with};

/// latchkey's own origin in these tests (`LATCHKEY_ISSUER`).
const OWN: &str = "http://latchkey.test";
const APP: &str = "https://app.example.com";
const EVIL: &str = "https://evil.example.net";

/// The `Set-Cookie` lines of a response, by cookie name.
fn set_cookies(resp: &Response) -> Vec<(String, String)> {
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| {
            let line = v.to_str().unwrap().to_string();
            (line.split('=').next().unwrap().to_string(), line)
        })
        .collect()
}

fn value_of(line: &str) -> String {
    line.split(';').next().unwrap().split_once('=').unwrap().1.to_string()
}

/// A browser's cookie jar for latchkey, kept by hand so every test step is visible.
#[derive(Clone, Debug)]
struct Jar {
    refresh: String,
    csrf: String,
}

impl Jar {
    fn from(resp: &Response, secure: bool) -> Self {
        let prefix = if secure { "__Host-" } else { "" };
        let cookies = set_cookies(resp);
        let find = |name: &str| {
            let name = format!("{prefix}{name}");
            value_of(&cookies.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no {name} in {cookies:?}")).1)
        };
        Self { refresh: find("lk_refresh"), csrf: find("lk_csrf") }
    }

    fn header(&self, secure: bool) -> String {
        let prefix = if secure { "__Host-" } else { "" };
        format!("{prefix}lk_refresh={}; {prefix}lk_csrf={}", self.refresh, self.csrf)
    }
}

async fn cookie_login(app: &TestApp, email: &str) -> Response {
    let body = json!({ "email": email, "password": PASSWORD, "token_delivery": "cookie" });
    app.client.post(app.url("/v1/auth/login")).header("origin", OWN).json(&body).send().await.unwrap()
}

/// A cookie-mode call: the jar's cookies, and the given Origin and CSRF header.
async fn with_cookies(
    app: &TestApp,
    path: &str,
    jar: &Jar,
    origin: Option<&str>,
    csrf: Option<&str>,
    secure: bool,
) -> Response {
    let mut req = app.client.post(app.url(path)).header("cookie", jar.header(secure)).json(&json!({}));
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    if let Some(csrf) = csrf {
        req = req.header("x-csrf-token", csrf);
    }
    req.send().await.unwrap()
}

async fn secure_app() -> TestApp {
    spawn_with(Options::default().env("LATCHKEY_CORS_ORIGINS", format!("{APP}, http://localhost:5173"))).await
}

#[tokio::test]
async fn cookie_mode_keeps_the_refresh_token_out_of_the_body() {
    // No grace window, so presenting a spent cookie again is a reuse at once.
    let app = spawn_with(Options::default().env("LATCHKEY_REFRESH_GRACE_SECS", "0")).await;
    assert_eq!(app.signup("cookie@example.com", PASSWORD).await.status(), 202);
    let resp = cookie_login(&app, "cookie@example.com").await;
    assert_eq!(resp.status(), 200);
    let cookies = set_cookies(&resp);
    let jar = Jar::from(&resp, true);
    let body: Value = resp.json().await.unwrap();
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert!(body["access_token"].is_string());
    assert_eq!(body["csrf_token"], jar.csrf.as_str());
    assert!(jar.refresh.starts_with("lk_rt_"));

    let refresh_line = &cookies.iter().find(|(n, _)| n == "__Host-lk_refresh").unwrap().1;
    for attribute in ["Path=/", "HttpOnly", "Secure", "SameSite=Strict", "Max-Age=604800"] {
        assert!(refresh_line.split("; ").any(|a| a == attribute), "{attribute} missing: {refresh_line}");
    }
    let csrf_line = &cookies.iter().find(|(n, _)| n == "__Host-lk_csrf").unwrap().1;
    assert!(!csrf_line.contains("HttpOnly"), "the page must be able to read {csrf_line}");
    assert!(csrf_line.contains("; Secure") && csrf_line.contains("Path=/"), "{csrf_line}");

    // Refresh through the cookie: new cookies, new CSRF token, nothing in the body.
    let resp = with_cookies(&app, "/v1/auth/refresh", &jar, Some(OWN), Some(&jar.csrf), true).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let next = Jar::from(&resp, true);
    let body: Value = resp.json().await.unwrap();
    assert!(body.get("refresh_token").is_none());
    assert_ne!(next.refresh, jar.refresh);
    assert_ne!(next.csrf, jar.csrf);
    assert_eq!(body["csrf_token"], next.csrf.as_str());
    assert_eq!(app.me(body["access_token"].as_str().unwrap()).await.status(), 200);

    // The spent cookie is a reuse: the session ends and the cookies are cleared.
    let resp = with_cookies(&app, "/v1/auth/refresh", &jar, Some(OWN), Some(&jar.csrf), true).await;
    let cleared = set_cookies(&resp);
    assert!(cleared.iter().all(|(_, line)| line.contains("Max-Age=0")) && cleared.len() == 2, "{cleared:?}");
    assert_problem(resp, 401, "refresh_token_reused").await;
}

#[tokio::test]
async fn cookie_requests_need_the_csrf_token_and_an_allowed_origin() {
    let app = secure_app().await;
    assert_eq!(app.signup("csrf@example.com", PASSWORD).await.status(), 202);
    let jar = Jar::from(&cookie_login(&app, "csrf@example.com").await, true);
    let other = Jar::from(&cookie_login(&app, "csrf@example.com").await, true);

    let refresh = "/v1/auth/refresh";
    for (origin, csrf, code) in [
        (Some(OWN), None, "invalid_csrf_token"),
        (Some(OWN), Some(""), "invalid_csrf_token"),
        (Some(OWN), Some("made-up"), "invalid_csrf_token"),
        // Another session's token, even when the cookie is set to match it.
        (Some(OWN), Some(other.csrf.as_str()), "invalid_csrf_token"),
        (None, Some(jar.csrf.as_str()), "invalid_origin"),
        (Some(EVIL), Some(jar.csrf.as_str()), "invalid_origin"),
        (Some("null"), Some(jar.csrf.as_str()), "invalid_origin"),
    ] {
        let resp = with_cookies(&app, refresh, &jar, origin, csrf, true).await;
        assert_problem(resp, 403, code).await;
    }
    let planted = Jar { refresh: jar.refresh.clone(), csrf: other.csrf.clone() };
    let resp = with_cookies(&app, refresh, &planted, Some(OWN), Some(&other.csrf), true).await;
    assert_problem(resp, 403, "invalid_csrf_token").await;

    // A cross-site form post to log out: no bearer token, the cookies ride
    // along, but the Origin is not allowed and there is no CSRF header.
    let form = app
        .client
        .post(app.url("/v1/auth/logout"))
        .header("cookie", jar.header(true))
        .header("origin", EVIL)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("x=1")
        .send()
        .await
        .unwrap();
    assert_problem(form, 403, "invalid_origin").await;
    let form_same_origin_without_token = app
        .client
        .post(app.url("/v1/auth/logout"))
        .header("cookie", jar.header(true))
        .header("origin", OWN)
        .send()
        .await
        .unwrap();
    assert_problem(form_same_origin_without_token, 403, "invalid_csrf_token").await;

    // None of that rotated or ended anything: the cookie still refreshes,
    // from latchkey's own pages and from an allowed app origin.
    let resp = with_cookies(&app, refresh, &jar, Some(APP), Some(&jar.csrf), true).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["access-control-allow-origin"], APP);
    assert_eq!(resp.headers()["access-control-allow-credentials"], "true");
    let jar = Jar::from(&resp, true);

    // An app on another origin cannot read the CSRF cookie: it asks for the token.
    let resp = app
        .client
        .get(app.url("/v1/auth/csrf"))
        .header("cookie", format!("__Host-lk_refresh={}", jar.refresh))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["csrf_token"], jar.csrf.as_str());
    let from_evil = app
        .client
        .get(app.url("/v1/auth/csrf"))
        .header("cookie", format!("__Host-lk_refresh={}", jar.refresh))
        .header("origin", EVIL)
        .send()
        .await
        .unwrap();
    assert!(from_evil.headers().get("access-control-allow-origin").is_none());
    assert_problem(from_evil, 403, "invalid_origin").await;

    // Logout by cookie, done right: the session ends, the cookies go.
    let resp = with_cookies(&app, "/v1/auth/logout", &jar, Some(OWN), Some(&jar.csrf), true).await;
    assert_eq!(resp.status(), 204);
    assert!(set_cookies(&resp).iter().all(|(_, line)| line.contains("Max-Age=0")));
    let after = with_cookies(&app, refresh, &jar, Some(OWN), Some(&jar.csrf), true).await;
    assert_problem(after, 401, "invalid_refresh_token").await;
    // The other session was never touched.
    assert_eq!(with_cookies(&app, refresh, &other, Some(OWN), Some(&other.csrf), true).await.status(), 200);
}

#[tokio::test]
async fn body_mode_needs_no_csrf_and_a_cookie_login_refuses_foreign_origins() {
    let app = secure_app().await;
    let tokens = app.new_session_for("body@example.com").await;
    // Body mode: the token is the credential; no cookie, no CSRF, any origin.
    let resp = app
        .client
        .post(app.url("/v1/auth/refresh"))
        .header("origin", EVIL)
        .json(&json!({ "refresh_token": tokens["refresh_token"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(set_cookies(&resp).is_empty());
    assert!(resp.headers().get("access-control-allow-origin").is_none());

    // A page elsewhere cannot log a visitor into an account of its choosing.
    let body = json!({ "email": "body@example.com", "password": PASSWORD, "token_delivery": "cookie" });
    let resp = app.client.post(app.url("/v1/auth/login")).header("origin", EVIL).json(&body).send().await.unwrap();
    assert!(set_cookies(&resp).is_empty());
    assert_problem(resp, 403, "invalid_origin").await;
    // A non-browser client (no Origin) may use cookie mode.
    let resp = app.client.post(app.url("/v1/auth/login")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(set_cookies(&resp).len(), 2);
}

#[tokio::test]
async fn cors_answers_the_listed_origins_only() {
    let app = secure_app().await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/v1/auth/refresh"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type, x-csrf-token")
            .send()
    };
    let ok = preflight(APP).await.unwrap();
    assert_eq!(ok.status(), 204);
    let h = ok.headers();
    assert_eq!(h["access-control-allow-origin"], APP);
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert!(h["access-control-allow-headers"].to_str().unwrap().contains("X-CSRF-Token"));
    assert!(h["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    assert!(h["vary"].to_str().unwrap().contains("Origin"));
    let local = preflight("http://localhost:5173").await.unwrap();
    assert_eq!(local.headers()["access-control-allow-origin"], "http://localhost:5173");

    let refused = preflight(EVIL).await.unwrap();
    assert!(refused.headers().get("access-control-allow-origin").is_none());
    assert_problem(refused, 403, "invalid_origin").await;

    // Simple requests from elsewhere are answered, but without CORS headers:
    // the page's script cannot read them.
    let resp = app.client.get(app.url("/healthz")).header("origin", EVIL).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    // Keys and metadata are public: anyone may read them, without credentials.
    let jwks = app.client.get(app.url("/.well-known/jwks.json")).header("origin", EVIL).send().await.unwrap();
    assert_eq!(jwks.headers()["access-control-allow-origin"], "*");
    assert!(jwks.headers().get("access-control-allow-credentials").is_none());
}

#[tokio::test]
async fn without_secure_the_cookies_drop_the_prefix_and_a_warning_is_logged() {
    let app = spawn_with(Options::default().env("LATCHKEY_COOKIE_SECURE", "false")).await;
    app.wait_for_log("LATCHKEY_COOKIE_SECURE=false").await;
    assert_eq!(app.signup("plain@example.com", PASSWORD).await.status(), 202);
    let resp = cookie_login(&app, "plain@example.com").await;
    let cookies = set_cookies(&resp);
    let refresh_line = &cookies.iter().find(|(n, _)| n == "lk_refresh").expect("lk_refresh").1;
    assert!(refresh_line.contains("Path=/v1/auth") && refresh_line.contains("HttpOnly"), "{refresh_line}");
    assert!(!refresh_line.contains("Secure"), "{refresh_line}");
    let jar = Jar::from(&resp, false);
    let resp = with_cookies(&app, "/v1/auth/refresh", &jar, Some(OWN), Some(&jar.csrf), false).await;
    assert_eq!(resp.status(), 200);
}
