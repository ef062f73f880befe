//! The examples under `examples/`, run for real against a live latchkey:
//! three resource servers that verify access tokens knowing only the issuer
//! URL, and two API clients generated from `openapi/openapi.json`.

use std::{process::Stdio, time::Duration};

use jsonwebtoken::{Algorithm, Header, decode_header};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::{
    helpers::{Options, TestApp, spawn_with},
    smtp::free_port,
    tokens::{b64, now, sign_with_server_key},
    tools,
};

/// latchkey on a fixed port, so its issuer URL is one a verifier can fetch.
async fn latchkey() -> TestApp {
    let port = free_port();
    spawn_with(
        Options::default()
            .env("LATCHKEY_BIND", format!("127.0.0.1:{port}"))
            .env("LATCHKEY_ISSUER", format!("http://127.0.0.1:{port}")),
    )
    .await
}

#[derive(Clone, Copy, Debug)]
enum Example {
    Rust,
    Python,
    Node,
}

/// A running example resource server.
struct Verifier {
    example: Example,
    url: String,
    _child: Child,
}

/// How long the Rust and Node examples wait between JWKS refetches for
/// unknown keys (their default is 30 s); the tests wait it out.
const COOLDOWN_MS: u64 = 300;

impl Verifier {
    async fn start(example: Example, issuer: &str) -> Self {
        Self::start_with(example, issuer, &[]).await
    }

    async fn start_with(example: Example, issuer: &str, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut cmd = match example {
            Example::Rust => Command::new(tools::workspace_binary("rust-verifier")),
            Example::Python => {
                let python = tools::python("python-verifier", &["examples/python-verifier/requirements.txt"]);
                let mut cmd = Command::new(python);
                cmd.args(["-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", &port.to_string()]);
                cmd.current_dir(tools::repo().join("examples/python-verifier"));
                cmd
            }
            Example::Node => {
                let mut cmd = Command::new("node");
                cmd.arg("server.mjs").current_dir(tools::npm_ci("examples/node-verifier"));
                cmd
            }
        };
        let child = cmd
            .env("ISSUER", issuer)
            .env("AUDIENCE", "latchkey")
            .env("PORT", port.to_string())
            .env("JWKS_COOLDOWN_MS", COOLDOWN_MS.to_string())
            .envs(env.iter().copied())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting the {example:?} verifier: {e}"));
        let verifier = Self { example, url: format!("http://127.0.0.1:{port}/protected"), _child: child };
        for _ in 0..300 {
            if reqwest::get(&verifier.url).await.is_ok() {
                return verifier;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the {example:?} verifier did not start within 30 s");
    }

    async fn call(&self, token: Option<&str>) -> reqwest::Response {
        let mut request = reqwest::Client::new().get(&self.url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// Asserts the token is accepted; returns the claims the example read.
    async fn accepts(&self, token: &str) -> Value {
        let resp = self.call(Some(token)).await;
        assert_eq!(resp.status(), 200, "{:?} refused a valid token", self.example);
        resp.json().await.unwrap()
    }

    /// Asserts an RFC 6750 refusal.
    async fn refuses(&self, token: Option<&str>, why: &str) {
        let resp = self.call(token).await;
        assert_eq!(resp.status(), 401, "{:?} accepted a token that is {why}", self.example);
        let challenge = resp.headers().get("www-authenticate").and_then(|v| v.to_str().ok());
        assert_eq!(challenge, Some(r#"Bearer error="invalid_token""#), "{:?}: {why}", self.example);
    }
}

async fn login(app: &TestApp, email: &str) -> (String, Value) {
    let tokens = app.new_session_for(email).await;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let me: Value = app.me(&access).await.json().await.unwrap();
    (access, me)
}

/// Claims as latchkey would issue them, with `changes` applied.
fn claims_like(token: &str, changes: Value) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    let mut claims: Value = serde_json::from_slice(&base64_url(payload)).unwrap();
    for (key, value) in changes.as_object().unwrap() {
        claims[key] = value.clone();
    }
    claims
}

fn base64_url(part: &str) -> Vec<u8> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    URL_SAFE_NO_PAD.decode(part).unwrap()
}

async fn verifies_tokens(example: Example) {
    let app = latchkey().await;
    let verifier = Verifier::start(example, &app.base).await;
    let email = format!("{example:?}-{}@example.com", uuid::Uuid::new_v4().simple()).to_lowercase();
    let (token, me) = login(&app, &email).await;

    let claims = verifier.accepts(&token).await;
    assert_eq!(claims["sub"], me["id"]);
    assert_eq!(claims["email"], email.as_str());

    verifier.refuses(None, "missing").await;
    // A changed payload breaks the signature.
    let mut parts: Vec<String> = token.split('.').map(Into::into).collect();
    parts[1] = b64(&claims_like(&token, json!({ "sub": uuid::Uuid::new_v4() })));
    verifier.refuses(Some(&parts.join(".")), "tampered").await;
    // Signed with the real key, but expired (beyond any leeway), or for another audience.
    let header = decode_header(&token).unwrap();
    let mut signing = Header::new(Algorithm::ES256);
    signing.typ = header.typ.clone();
    signing.kid = header.kid.clone();
    let expired = claims_like(&token, json!({ "iat": now() - 7200, "nbf": now() - 7200, "exp": now() - 3600 }));
    verifier.refuses(Some(&sign_with_server_key(&app, &signing, &expired)), "expired").await;
    let elsewhere = claims_like(&token, json!({ "aud": "another-service" }));
    verifier.refuses(Some(&sign_with_server_key(&app, &signing, &elsewhere)), "for another audience").await;
    // Not an access token: an ID-token-like `typ` on a validly signed JWT.
    let mut id_token = signing.clone();
    id_token.typ = Some("JWT".into());
    verifier.refuses(Some(&sign_with_server_key(&app, &id_token, &claims_like(&token, json!({})))), "not at+jwt").await;
    // `alg: none` with no signature.
    let none = format!("{}.{}.", b64(&json!({ "alg": "none", "typ": "at+jwt", "kid": header.kid })), parts[1]);
    verifier.refuses(Some(&none), "unsigned").await;

    // Two rotations: the active key is now one the verifier has never seen.
    for _ in 0..2 {
        let out = app.cli(&["keys", "rotate"]).await;
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let active = active_kid(&app).await;
    app.wait_for_jwks(|set| set.find(&active).is_some()).await;
    // The JWKS may publish a key before the server signs with it (keys are
    // published ahead of use): log in until the new key signs.
    let mut fresh = String::new();
    for _ in 0..100 {
        fresh = login(&app, &email).await.0;
        if decode_header(&fresh).unwrap().kid.as_deref() == Some(active.as_str()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(decode_header(&fresh).unwrap().kid.as_deref(), Some(active.as_str()));
    assert_ne!(decode_header(&fresh).unwrap().kid, header.kid, "signed with another key");
    tokio::time::sleep(Duration::from_millis(COOLDOWN_MS + 200)).await;
    // Without a restart, both the new key's tokens and the retired key's still-valid ones pass.
    verifier.accepts(&fresh).await;
    verifier.accepts(&token).await;
}

/// The kid `latchkey keys list` shows as active.
async fn active_kid(app: &TestApp) -> String {
    let out = app.cli(&["keys", "list"]).await;
    let list = String::from_utf8_lossy(&out.stdout).to_string();
    let line = list.lines().find(|l| l.split_whitespace().nth(2) == Some("active")).expect("an active key");
    line.split_whitespace().next().unwrap().to_string()
}

#[tokio::test]
async fn the_rust_example_verifies_tokens_through_discovery_alone() {
    verifies_tokens(Example::Rust).await;
}

#[tokio::test]
async fn the_python_example_verifies_tokens_through_discovery_alone() {
    verifies_tokens(Example::Python).await;
}

#[tokio::test]
async fn the_node_example_verifies_tokens_through_discovery_alone() {
    verifies_tokens(Example::Node).await;
}

/// Output of a generator, which must not warn about the document.
fn assert_no_warnings(tool: &str, output: &str) {
    let warnings: Vec<_> = output.lines().filter(|l| l.to_lowercase().contains("warn")).collect();
    assert!(warnings.is_empty(), "{tool} warned about openapi/openapi.json:\n{}", warnings.join("\n"));
}

#[tokio::test]
async fn a_generated_typescript_client_type_checks_and_runs_the_journey() {
    let app = latchkey().await;
    let dir = tools::npm_ci("examples/clients/typescript");
    let npm = |script: &str| {
        let mut cmd = std::process::Command::new("npm");
        cmd.args(["run", "--silent", script]).current_dir(&dir).env("LATCHKEY_URL", &app.base);
        cmd
    };
    let generated = tools::run(&mut npm("generate"), "node and npm");
    assert_no_warnings("openapi-typescript", &generated);
    tools::run(&mut npm("check"), "node and npm");
    let journey = tools::run(&mut npm("journey"), "node and npm");
    assert!(journey.contains("typescript journey ok"), "{journey}");
}

#[tokio::test]
async fn a_generated_python_client_runs_the_journey() {
    let app = latchkey().await;
    let python = tools::python("python-client", &["examples/clients/python/requirements.txt"]);
    let dir = tools::repo().join("examples/clients/python");
    let out = tempfile::tempdir().unwrap();
    let package = out.path().join("latchkey-client");
    let generator = python.parent().unwrap().join("openapi-python-client");
    let generated = tools::run(
        std::process::Command::new(generator)
            .args(["generate", "--path", "../../../openapi/openapi.json", "--config", "config.yaml", "--output-path"])
            .arg(&package)
            .current_dir(&dir),
        "python3 and PyPI",
    );
    assert_no_warnings("openapi-python-client", &generated);
    let journey = tools::run(
        std::process::Command::new(&python)
            .arg("journey.py")
            .current_dir(&dir)
            .env("PYTHONPATH", &package)
            .env("LATCHKEY_URL", &app.base),
        "python3",
    );
    assert!(journey.contains("python journey ok"), "{journey}");
}

// ---- revocation: the examples read the status lists ----

/// latchkey as `latchkey()` does it, with a short status-list `ttl`, on `backend`.
async fn latchkey_with_ttl(backend: crate::helpers::Backend, ttl: u64) -> TestApp {
    let port = free_port();
    spawn_with(
        Options::backend(backend)
            .env("LATCHKEY_BIND", format!("127.0.0.1:{port}"))
            .env("LATCHKEY_ISSUER", format!("http://127.0.0.1:{port}"))
            .env("LATCHKEY_STATUS_LIST_TTL_SECS", ttl)
            .env("LATCHKEY_APP_URL", "http://app.test"),
    )
    .await
}

const EXAMPLES: [Example; 3] = [Example::Rust, Example::Python, Example::Node];

impl Verifier {
    /// Waits until the token is refused (within `within`); panics otherwise.
    async fn comes_to_refuse(&self, token: &str, why: &str, within: Duration) {
        let started = std::time::Instant::now();
        while self.call(Some(token)).await.status() == 200 {
            assert!(
                started.elapsed() < within,
                "{:?} still accepts a token whose session ended by {why}",
                self.example
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.refuses(Some(token), why).await;
    }
}

/// Every way a session ends, seen by every example within `ttl` + 5 s,
/// while another session's token keeps working.
async fn every_example_refuses_an_ended_session_within_the_ttl(backend: crate::helpers::Backend) {
    const TTL: u64 = 2;
    let app = latchkey_with_ttl(backend, TTL).await;
    let mut verifiers = Vec::new();
    for example in EXAMPLES {
        verifiers.push(Verifier::start(example, &app.base).await);
    }
    let token = |tokens: &Value| tokens["access_token"].as_str().unwrap().to_string();
    let bystander = token(&app.new_session().await);
    // One user with several sessions, and one session per other way to end one.
    let email = format!("ends-{}@example.com", uuid::Uuid::new_v4().simple());
    let keep = app.new_session_for(&email).await;
    let mut sessions = vec![keep.clone()];
    for _ in 0..3 {
        sessions.push(app.login(&email, crate::helpers::PASSWORD).await.json().await.unwrap());
    }
    let (logout, revoke, reuse, deleted) =
        (app.new_session().await, app.new_session().await, app.new_session().await, app.new_session().await);
    let all: Vec<&Value> = sessions.iter().chain([&logout, &revoke, &reuse, &deleted]).collect();
    for verifier in &verifiers {
        verifier.accepts(&bystander).await;
        for tokens in &all {
            verifier.accepts(&token(tokens)).await;
        }
    }

    let bearer = |t: &Value| token(t);
    let client = &app.client;
    let ok = |status: reqwest::StatusCode| assert!(status.is_success(), "{status}");
    ok(client.post(app.url("/v1/auth/logout")).bearer_auth(bearer(&logout)).send().await.unwrap().status());
    ok(app.post("/v1/auth/revoke", json!({ "token": logout_refresh(&revoke) })).await.status());
    let next: Value = app.refresh(&logout_refresh(&reuse)).await.json().await.unwrap();
    assert_eq!(app.refresh(&logout_refresh(&next)).await.status(), 200);
    assert_eq!(app.refresh(&logout_refresh(&reuse)).await.status(), 401, "reuse");
    let id = sessions[1]["session_id"].as_str().unwrap();
    ok(client.delete(app.url(&format!("/v1/sessions/{id}"))).bearer_auth(bearer(&keep)).send().await.unwrap().status());
    let others = client.post(app.url("/v1/sessions/revoke-others")).bearer_auth(bearer(&keep)).send();
    ok(others.await.unwrap().status());
    let delete = client
        .delete(app.url("/v1/users/me"))
        .bearer_auth(bearer(&deleted))
        .json(&json!({ "password": crate::helpers::PASSWORD }));
    ok(delete.send().await.unwrap().status());

    let ended = [
        (&logout, "logout"),
        (&revoke, "revoke"),
        (&reuse, "refresh-token reuse"),
        (&sessions[1], "DELETE /v1/sessions/{id}"),
        (&sessions[2], "revoke-others"),
        (&sessions[3], "revoke-others"),
        (&deleted, "account deletion"),
    ];
    for verifier in &verifiers {
        for (tokens, why) in ended {
            verifier.comes_to_refuse(&token(tokens), why, Duration::from_secs(TTL + 5)).await;
        }
        verifier.accepts(&bystander).await;
        verifier.accepts(&token(&keep)).await;
    }

    // The password change ends every other session (the reset is the same
    // statement over every session; its bit is checked server-side).
    let other = token(&app.login(&email, crate::helpers::PASSWORD).await.json::<Value>().await.unwrap());
    let change = json!({ "current_password": crate::helpers::PASSWORD, "new_password": "Brand9NewSecret" });
    ok(client
        .post(app.url("/v1/auth/password/change"))
        .bearer_auth(bearer(&keep))
        .json(&change)
        .send()
        .await
        .unwrap()
        .status());
    for verifier in &verifiers {
        verifier.comes_to_refuse(&other, "password change", Duration::from_secs(TTL + 5)).await;
        verifier.accepts(&token(&keep)).await;
    }

    // A password reset ends every session, the one that changed the password too.
    assert_eq!(app.post("/v1/auth/password/forgot", json!({ "email": email })).await.status(), 202);
    let line = app.wait_for_log("reset-password?token=").await;
    let reset = line.split("?token=").nth(1).unwrap().split_whitespace().next().unwrap();
    let resp = app.post("/v1/auth/password/reset", json!({ "token": reset, "new_password": "Other9NewSecret" })).await;
    assert_eq!(resp.status(), 200);
    for verifier in &verifiers {
        verifier.comes_to_refuse(&token(&keep), "password reset", Duration::from_secs(TTL + 5)).await;
        verifier.accepts(&bystander).await;
    }
}

fn logout_refresh(tokens: &Value) -> String {
    tokens["refresh_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn every_example_refuses_an_ended_session_within_the_ttl_on_postgres() {
    every_example_refuses_an_ended_session_within_the_ttl(crate::helpers::Backend::Postgres).await;
}

#[tokio::test]
async fn every_example_refuses_an_ended_session_within_the_ttl_on_sqlite() {
    every_example_refuses_an_ended_session_within_the_ttl(crate::helpers::Backend::Sqlite).await;
}

#[tokio::test]
async fn no_example_trusts_a_tampered_status_list() {
    let app = latchkey().await;
    let (token, _) = login(&app, &format!("tamper-{}@example.com", uuid::Uuid::new_v4().simple())).await;
    let header = decode_header(&token).unwrap();
    let kid = header.kid.clone().unwrap();
    let mut at = Header::new(Algorithm::ES256);
    at.typ = header.typ.clone();
    at.kid = Some(kid.clone());
    // A list with every bit 0, as latchkey would sign it for `uri`, then spoilt.
    let list = |typ: &str, sub: &str| {
        let mut h = Header::new(Algorithm::ES256);
        h.typ = Some(typ.into());
        h.kid = Some(kid.clone());
        let lst = {
            use std::io::Write;
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
            z.write_all(&[0u8; 1024]).unwrap();
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(z.finish().unwrap())
        };
        let claims = json!({ "sub": sub, "iat": now(), "exp": now() + 3600, "ttl": 30, "status_list": { "bits": 1, "lst": lst } });
        sign_with_server_key(&app, &h, &claims)
    };
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let good_uri = format!("{base}/good");
    // The real key's signature over other claims: the payload changes, the signature stays.
    let genuine = list("statuslist+jwt", &format!("{base}/bad-signature"));
    let other = list("statuslist+jwt", &format!("{base}/other"));
    let (g, o): (Vec<&str>, Vec<&str>) = (genuine.split('.').collect(), other.split('.').collect());
    let bad_signature = format!("{}.{}.{}", g[0], g[1], o[2]);
    let bodies = vec![
        ("/good".to_string(), list("statuslist+jwt", &good_uri)),
        ("/bad-signature".to_string(), bad_signature),
        ("/wrong-sub".to_string(), list("statuslist+jwt", &good_uri)),
        ("/wrong-typ".to_string(), list("JWT", &format!("{base}/wrong-typ"))),
    ];
    // Bind the fake server on the port the URIs name.
    let served = list_server_on(port, bodies).await;
    assert_eq!(served, base);
    let naming = |path: &str, idx: u32| {
        let claims =
            claims_like(&token, json!({ "status": { "status_list": { "idx": idx, "uri": format!("{base}{path}") } } }));
        sign_with_server_key(&app, &at, &claims)
    };
    for example in EXAMPLES {
        let verifier = Verifier::start(example, &app.base).await;
        verifier.accepts(&naming("/good", 7)).await;
        verifier.refuses(Some(&naming("/good", 1024 * 8)), "naming an index beyond its list").await;
        verifier.refuses(Some(&naming("/bad-signature", 7)), "checked against a list with a bad signature").await;
        verifier.refuses(Some(&naming("/wrong-sub", 7)), "checked against a list for another URI").await;
        verifier.refuses(Some(&naming("/wrong-typ", 7)), "checked against a list of the wrong typ").await;
        verifier.refuses(Some(&naming("/nowhere", 7)), "checked against no list at all").await;
    }
}

/// `list_server`, on `port`.
async fn list_server_on(port: u16, bodies: Vec<(String, String)>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let base = format!("http://127.0.0.1:{port}");
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let bodies = bodies.clone();
            tokio::spawn(async move {
                // The whole head before answering: closing with unread bytes
                // would reset the connection under the client's feet.
                let (mut buf, mut chunk) = (Vec::new(), [0u8; 4096]);
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 65536 {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let answer = match bodies.iter().find(|(p, _)| *p == path) {
                    Some((_, body)) => format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/statuslist+jwt\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    ),
                    None => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_string(),
                };
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    base
}

#[tokio::test]
async fn the_examples_fail_closed_once_their_copy_is_too_old() {
    let mut app = latchkey_with_ttl(crate::helpers::Backend::Postgres, 1).await;
    let (token, _) = login(&app, &format!("stale-{}@example.com", uuid::Uuid::new_v4().simple())).await;
    let mut verifiers = Vec::new();
    for example in EXAMPLES {
        let verifier = Verifier::start_with(example, &app.base, &[("STATUS_LIST_MAX_STALE_SECS", "4")]).await;
        verifier.accepts(&token).await;
        verifiers.push(verifier);
    }
    // latchkey is gone: past the list's ttl, the copy held is still used …
    app.kill();
    app.wait().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for verifier in &verifiers {
        verifier.accepts(&token).await;
    }
    // … until it is older than STATUS_LIST_MAX_STALE_SECS: then nothing can be known, and the token is refused.
    for verifier in &verifiers {
        verifier
            .comes_to_refuse(&token, "an issuer gone for longer than the copy may be kept", Duration::from_secs(10))
            .await;
    }
}
