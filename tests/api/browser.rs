//! In a real browser (headless Debian chromium, driven by playwright-core):
//! the demo SPA end to end, other origins attacking a signed-in tab, and
//! Swagger UI. The scripts are in `tests/browser`.

use tokio::process::Command;

use crate::{
    helpers::{Options, TestApp, spawn_with},
    oidc::Provider,
    smtp::{SmtpServer, free_port},
    tools,
};

/// latchkey on a port known in advance, so that its issuer (and so the
/// origin of its own pages and the links it mails) is the URL the browser opens.
async fn latchkey(options: Options) -> TestApp {
    latchkey_on(free_port(), options).await
}

async fn latchkey_on(port: u16, options: Options) -> TestApp {
    let url = format!("http://127.0.0.1:{port}");
    spawn_with(options.env("LATCHKEY_BIND", format!("127.0.0.1:{port}")).env("LATCHKEY_ISSUER", &url)).await
}

/// Runs `tests/browser/<script>` against `app`; fails with its output.
async fn browser_script(script: &str, app: &TestApp, env: &[(&str, String)]) {
    let dir = tools::npm_ci("tests/browser");
    let run = Command::new("node")
        .arg(dir.join(script))
        .env("LATCHKEY_URL", &app.base)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(&dir)
        .kill_on_drop(true)
        .output();
    // The scripts stop themselves after two minutes; this is the backstop.
    let out = tokio::time::timeout(std::time::Duration::from_secs(180), run)
        .await
        .unwrap_or_else(|_| panic!("{script} still running after 180 s"))
        .expect("running node (the browser tests need node and chromium)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{script}:\n{stdout}{stderr}");
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
}

#[tokio::test]
async fn the_demo_journey_in_chromium() {
    let smtp = SmtpServer::start().await;
    let ttl = 3;
    let app = latchkey(
        Options::default()
            .env("LATCHKEY_SMTP_URL", smtp.url())
            .env("LATCHKEY_REQUIRE_EMAIL_VERIFICATION", "true")
            .env("LATCHKEY_ACCESS_TOKEN_TTL_SECS", ttl),
    )
    .await;
    let env = [("MAIL_DIR", smtp.outdir().display().to_string()), ("ACCESS_TOKEN_TTL_SECS", ttl.to_string())];
    browser_script("demo.mjs", &app, &env).await;
}

#[tokio::test]
async fn two_step_sign_in_from_the_demo_in_chromium() {
    let app = latchkey(Options::default().env("LATCHKEY_RATE_LIMIT_LOGIN_PER_ACCOUNT", "50")).await;
    browser_script("mfa.mjs", &app, &[]).await;
}

/// Passkeys on `http://localhost:<port>`: the relying party must be a
/// domain name, and latchkey's issuer is that URL.
async fn passkeys_in_chromium(backend: crate::helpers::Backend) {
    let (port, smtp) = (free_port(), SmtpServer::start().await);
    let site = format!("http://localhost:{port}");
    let options = Options::backend(backend)
        .env("LATCHKEY_BIND", format!("127.0.0.1:{port}"))
        .env("LATCHKEY_ISSUER", &site)
        .env("LATCHKEY_SMTP_URL", smtp.url());
    let app = spawn_with(options).await;
    let email = format!("passkey-{}@example.com", uuid::Uuid::new_v4().simple());
    browser_script("passkey.mjs", &app, &[("PASSKEY_URL", site), ("EMAIL", email.clone())]).await;
    // The owner is told of each change.
    let subjects: Vec<String> = smtp.wait_for(&email, 2).await.into_iter().map(|m| m.subject).collect();
    assert_eq!(subjects, ["A passkey was added to your account", "A passkey was removed from your account"]);
}
crate::on_both_backends!(passkeys_in_chromium);

#[tokio::test]
async fn google_sign_in_from_the_demo_in_chromium() {
    let port = free_port();
    let provider = Provider::start_for(&format!("http://127.0.0.1:{port}/v1/auth/oauth/google/callback")).await;
    let options =
        provider.configure(Options::default()).env("LATCHKEY_APP_URL", format!("http://127.0.0.1:{port}/demo"));
    let app = latchkey_on(port, options).await;
    browser_script("google.mjs", &app, &[]).await;
}

#[tokio::test]
async fn other_origins_cannot_refresh_or_log_out_in_chromium() {
    let app = latchkey(Options::default()).await;
    browser_script("attacks.mjs", &app, &[]).await;
}

#[tokio::test]
async fn swagger_ui_authorizes_and_tries_get_me_in_chromium() {
    let app = latchkey(Options::default()).await;
    browser_script("swagger.mjs", &app, &[]).await;
}
