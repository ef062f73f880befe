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
