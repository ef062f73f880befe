//! A real OpenID provider for the sign-in tests: `tests/oidc/provider.mjs`
//! (the npm package `oidc-provider`) on a free port, and a person at its
//! login form, played over plain HTTP with a cookie jar of its own.

use std::{process::Stdio, time::Duration};

use reqwest::{
    StatusCode,
    header::{COOKIE, LOCATION, SET_COOKIE},
};
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};
use url::Url;

use crate::{
    helpers::{Options, TestApp},
    tools,
};

pub const CLIENT_ID: &str = "latchkey-test";
pub const CLIENT_SECRET: &str = "provider-test-secret";
/// Where the app under test wants people to come back to.
pub const APP: &str = "http://app.test/signed-in";
/// The callback registered at the provider: `LATCHKEY_ISSUER` of the test servers + the fixed path.
pub const CALLBACK: &str = "http://latchkey.test/v1/auth/oauth/google/callback";

pub struct Provider {
    pub issuer: String,
    child: Child,
}

impl Provider {
    pub async fn start() -> Self {
        Self::start_for(CALLBACK).await
    }

    /// A provider that sends people back to `callback`. A start that has not
    /// said `ready` within 30 s is killed and tried again: twice in about
    /// forty CI runs of these tests a provider hung after loading, before
    /// listening (cause not found yet), while a fresh one starts in a second.
    pub async fn start_for(callback: &str) -> Self {
        let dir = tools::npm_ci("tests/oidc");
        for attempt in 1..=3 {
            let mut child = Command::new("node")
                .arg(dir.join("provider.mjs"))
                .envs([
                    ("PORT", "0"),
                    ("CLIENT_ID", CLIENT_ID),
                    ("CLIENT_SECRET", CLIENT_SECRET),
                    ("REDIRECT_URI", callback),
                    ("EXIT_ON_STDIN_EOF", "1"),
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .expect("starting the OpenID provider (needs node)");
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            match tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await {
                Ok(line) => {
                    let line = line.unwrap().expect("the OpenID provider exited before it was ready");
                    let issuer = line.strip_prefix("ready ").expect("a ready line").to_string();
                    return Self { issuer, child };
                }
                Err(_) => {
                    eprintln!("the OpenID provider did not start within 30 s (attempt {attempt}); starting another");
                    let _ = child.kill().await;
                }
            }
        }
        panic!("the OpenID provider did not start in three attempts");
    }

    /// `options` with latchkey's Google sign-in pointed at this provider.
    pub fn configure(&self, options: Options) -> Options {
        options
            .env("LATCHKEY_GOOGLE_CLIENT_ID", CLIENT_ID)
            .env("LATCHKEY_GOOGLE_CLIENT_SECRET", CLIENT_SECRET)
            .env("LATCHKEY_GOOGLE_ISSUER", &self.issuer)
            .env("LATCHKEY_APP_URL", "http://app.test")
    }

    pub async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }

    /// A person at the provider who signs in as `username` (the address; one
    /// starting `unverified` has no verified address) and allows the app.
    /// Returns where the provider sends the browser: the callback URL.
    pub async fn sign_in(&self, authorize_url: &str, username: &str) -> Url {
        self.interact(authorize_url, &[("username", username), ("action", "login")]).await
    }

    /// A person at the provider who declines.
    pub async fn deny(&self, authorize_url: &str) -> Url {
        self.interact(authorize_url, &[("action", "deny")]).await
    }

    async fn interact(&self, authorize_url: &str, form: &[(&str, &str)]) -> Url {
        // A fresh jar: a new browser, so no provider session carries over.
        let browser =
            reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let interaction = see_other(browser.get(authorize_url).send().await.unwrap(), authorize_url);
        assert!(interaction.path().starts_with("/interaction/"), "provider sent the browser to {interaction}");
        let resume =
            see_other(browser.post(interaction.clone()).form(form).send().await.unwrap(), interaction.as_str());
        see_other(browser.get(resume.clone()).send().await.unwrap(), resume.as_str())
    }
}

/// The absolute target of a 303 from the provider.
fn see_other(resp: reqwest::Response, from: &str) -> Url {
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "provider answer to {from}");
    let location = resp.headers()[LOCATION].to_str().unwrap();
    Url::parse(from).unwrap().join(location).unwrap()
}

/// The target of a 302 from latchkey.
pub fn found(resp: &reqwest::Response) -> Url {
    assert_eq!(resp.status(), StatusCode::FOUND, "latchkey answer to {}", resp.url());
    Url::parse(resp.headers()[LOCATION].to_str().unwrap()).unwrap()
}

/// A sign-in started at latchkey: the provider URL it redirected to, and the
/// cookie that binds it to the browser (`name=value`).
pub struct Started {
    pub url: Url,
    pub cookie: String,
}

impl Started {
    pub fn from(resp: reqwest::Response) -> Self {
        let url = found(&resp);
        let line = resp
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|l| l.starts_with("__Host-lk_signin="))
            .unwrap_or_else(|| panic!("no sign-in cookie with the redirect to {url}"));
        Self { url, cookie: line.split(';').next().unwrap().to_string() }
    }
}

pub fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

impl TestApp {
    /// `GET /v1/auth/oauth/google/authorize`; returns the response.
    pub async fn google_authorize(&self, redirect_to: &str) -> reqwest::Response {
        let url = Url::parse_with_params(&self.url("/v1/auth/oauth/google/authorize"), [("redirect_to", redirect_to)])
            .unwrap();
        self.client.get(url).send().await.unwrap()
    }

    /// Starts a sign-in that comes back to `APP`.
    pub async fn google_start(&self) -> Started {
        Started::from(self.google_authorize(APP).await)
    }

    /// Delivers the provider's redirect (a callback URL) to this server, from
    /// the browser that started `started`; returns the response.
    pub async fn google_callback(&self, callback: &Url, started: &Started) -> reqwest::Response {
        self.google_callback_with(callback, Some(&started.cookie)).await
    }

    /// The same from a browser holding `cookie` (or none).
    pub async fn google_callback_with(&self, callback: &Url, cookie: Option<&str>) -> reqwest::Response {
        assert!(callback.as_str().starts_with(CALLBACK), "the provider redirected to {callback}");
        let url = format!("{}?{}", self.url("/v1/auth/oauth/google/callback"), callback.query().unwrap_or(""));
        let mut request = self.client.get(url);
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        request.send().await.unwrap()
    }

    /// A whole sign-in as `username`; returns where latchkey sends the browser back to.
    pub async fn google_sign_in(&self, provider: &Provider, username: &str) -> Url {
        let started = self.google_start().await;
        let callback = provider.sign_in(started.url.as_str(), username).await;
        found(&self.google_callback(&callback, &started).await)
    }

    pub async fn oauth_exchange(&self, code: &str) -> reqwest::Response {
        self.post("/v1/auth/oauth/exchange", serde_json::json!({ "code": code })).await
    }

    /// A whole sign-in and code exchange; returns the token response.
    pub async fn google_login(&self, provider: &Provider, username: &str) -> Value {
        let back = self.google_sign_in(provider, username).await;
        assert!(back.as_str().starts_with(APP), "sent back to {back}");
        let code = param(&back, "code").unwrap_or_else(|| panic!("no code in {back}"));
        let resp = self.oauth_exchange(&code).await;
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }
}
