//! Second factors: TOTP enrollment and login with codes computed here from
//! the secret (RFC 6238, implemented below independently of the server's
//! crate), recovery codes, every refusal, `amr`, the notice mail, and
//! bursts against single-use codes and tokens.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, Options, PASSWORD, TestApp, assert_problem, burst_with, count, spawn_with, spawn_with_clock},
    oidc::{Provider, param},
    on_both_backends,
    smtp::SmtpServer,
    tokens::verify_with_jwks,
};

/// RFC 6238 with HMAC-SHA-1, 6 digits, 30-second steps: the code of `step`.
fn totp_at_step(secret: &[u8], step: i64) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = ring::hmac::sign(&key, &(step as u64).to_be_bytes());
    let mac = mac.as_ref();
    let offset = usize::from(mac[19] & 0x0f);
    let binary = u32::from_be_bytes(mac[offset..offset + 4].try_into().unwrap()) & 0x7fff_ffff;
    format!("{:06}", binary % 1_000_000)
}

fn step_of(at: DateTime<Utc>) -> i64 {
    at.timestamp() / 30
}

/// RFC 4648 base32 (no padding), as the server hands the secret out.
fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut value, mut out) = (0u32, 0u64, Vec::new());
    for c in text.bytes() {
        let digit = ALPHABET.iter().position(|a| *a == c).unwrap_or_else(|| panic!("not base32: {text}"));
        value = (value << 5) | digit as u64;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((value >> bits) as u8);
        }
    }
    out
}

#[test]
fn the_test_totp_matches_rfc_6238() {
    // Appendix B, SHA-1, the six low digits of the 8-digit vectors.
    let secret = b"12345678901234567890";
    assert_eq!(totp_at_step(secret, 59 / 30), "287082");
    assert_eq!(totp_at_step(secret, 1_111_111_109 / 30), "081804");
    assert_eq!(totp_at_step(secret, 2_000_000_000 / 30), "279037");
    assert_eq!(base32_decode("GEZDGNBVGY3TQOJQ"), b"1234567890");
}

fn address() -> String {
    format!("user-{}@example.com", uuid::Uuid::new_v4().simple())
}

fn access(tokens: &Value) -> &str {
    tokens["access_token"].as_str().unwrap()
}

async fn call(app: &TestApp, method: reqwest::Method, path: &str, tokens: &Value, body: Value) -> reqwest::Response {
    app.client.request(method, app.url(path)).bearer_auth(access(tokens)).json(&body).send().await.unwrap()
}

async fn post(app: &TestApp, path: &str, tokens: &Value, body: Value) -> reqwest::Response {
    call(app, reqwest::Method::POST, path, tokens, body).await
}

async fn status(app: &TestApp, tokens: &Value) -> Value {
    let resp = app.client.get(app.url("/v1/users/me/mfa")).bearer_auth(access(tokens)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

async fn event_kinds(app: &TestApp, tokens: &Value) -> Vec<String> {
    let resp = app.client.get(app.url("/v1/users/me/events?limit=100")).bearer_auth(access(tokens)).send().await;
    let page: Value = resp.unwrap().json().await.unwrap();
    page["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap().to_string()).collect()
}

fn amr(app_jwks: &jsonwebtoken::jwk::JwkSet, tokens: &Value) -> Value {
    verify_with_jwks(access(tokens), app_jwks).claims["amr"].clone()
}

/// Enrolls and confirms TOTP for the signed-in `tokens`; returns the
/// secret and the recovery codes.
async fn enable_totp(app: &TestApp, tokens: &Value, password: Option<&str>) -> (Vec<u8>, Vec<String>) {
    let body = password.map_or(json!({}), |p| json!({ "password": p }));
    let resp = post(app, "/v1/users/me/mfa/totp", tokens, body).await;
    assert_eq!(resp.status(), 200);
    let enrollment: Value = resp.json().await.unwrap();
    let secret = base32_decode(enrollment["secret"].as_str().unwrap());
    let code = totp_at_step(&secret, step_of(app.now()));
    let resp = post(app, "/v1/users/me/mfa/totp/confirm", tokens, json!({ "code": code })).await;
    assert_eq!(resp.status(), 200);
    let codes: Value = resp.json().await.unwrap();
    let codes = codes["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().into()).collect();
    (secret, codes)
}

/// Logs in with the password and expects the second step; returns its `mfa_token`.
async fn mfa_token(app: &TestApp, email: &str) -> String {
    let resp = app.login(email, PASSWORD).await;
    assert_eq!(resp.headers()["cache-control"], "no-store", "the mfa_token is a credential");
    let body = assert_problem(resp, 403, "mfa_required").await;
    assert_eq!(body["methods"], json!(["totp", "recovery_code"]), "{body}");
    assert!(body.get("access_token").is_none() && body.get("refresh_token").is_none(), "{body}");
    body["mfa_token"].as_str().unwrap().to_string()
}

async fn verify(app: &TestApp, body: Value) -> reqwest::Response {
    app.post("/v1/auth/mfa/verify", body).await
}

async fn the_whole_totp_journey(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let options = Options::backend(backend)
        .env("LATCHKEY_SMTP_URL", smtp.url())
        .env("LATCHKEY_MAIL_POLL_MS", "100")
        .env("LATCHKEY_TOTP_ISSUER", "Acme Cloud")
        // This journey makes more checks than five; the limit has its own test.
        .env("LATCHKEY_RATE_LIMIT_LOGIN_PER_ACCOUNT", "100");
    let app = spawn_with_clock(options).await;
    let email = address();
    let tokens = app.new_session_for(&email).await;
    assert_eq!(status(&app, &tokens).await, json!({ "totp": false, "recovery_codes_left": 0, "passkeys": 0 }));

    // Enrollment needs the password.
    for body in [json!({}), json!({ "password": "Wrong1Password" })] {
        let resp = post(&app, "/v1/users/me/mfa/totp", &tokens, body).await;
        assert_problem(resp, 403, "invalid_current_password").await;
    }
    let resp = post(&app, "/v1/users/me/mfa/totp", &tokens, json!({ "password": PASSWORD })).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let first: Value = resp.json().await.unwrap();
    let first_secret = base32_decode(first["secret"].as_str().unwrap());
    assert!(first_secret.len() >= 20, "at least 160 bits");
    let uri = first["otpauth_uri"].as_str().unwrap();
    let label = format!("otpauth://totp/Acme%20Cloud:{}", email.replace('@', "%40"));
    let query =
        format!("?secret={}&issuer=Acme%20Cloud&algorithm=SHA1&digits=6&period=30", first["secret"].as_str().unwrap());
    assert_eq!(uri, format!("{label}{query}"));
    let qr = first["qr_code"].as_str().unwrap().strip_prefix("data:image/svg+xml;base64,").expect("an SVG data URL");
    use base64::Engine;
    let svg = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(qr).unwrap()).unwrap();
    assert!(svg.contains("<svg") && svg.contains("</svg>"), "{svg}");

    // Unconfirmed, it changes nothing for login.
    assert_eq!(app.login(&email, PASSWORD).await.status(), 200);
    // A second call replaces the unconfirmed secret: the first one's codes no longer confirm.
    let resp = post(&app, "/v1/users/me/mfa/totp", &tokens, json!({ "password": PASSWORD })).await;
    let second: Value = resp.json().await.unwrap();
    let secret = base32_decode(second["secret"].as_str().unwrap());
    assert_ne!(secret, first_secret);
    let now = step_of(app.now());
    let stale = totp_at_step(&first_secret, now);
    let resp = post(&app, "/v1/users/me/mfa/totp/confirm", &tokens, json!({ "code": stale })).await;
    assert_problem(resp, 400, "invalid_mfa_code").await;
    for wrong in ["", "12345", "1234567", "abcdef", "１２３４５６"] {
        let resp = post(&app, "/v1/users/me/mfa/totp/confirm", &tokens, json!({ "code": wrong })).await;
        assert_problem(resp, 400, "invalid_mfa_code").await;
    }
    let resp =
        post(&app, "/v1/users/me/mfa/totp/confirm", &tokens, json!({ "code": totp_at_step(&secret, now) })).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let codes: Value = resp.json().await.unwrap();
    let recovery: Vec<String> =
        codes["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().into()).collect();
    assert_eq!(recovery.len(), 10);
    assert_eq!(status(&app, &tokens).await, json!({ "totp": true, "recovery_codes_left": 10, "passkeys": 0 }));
    let resp = post(&app, "/v1/users/me/mfa/totp", &tokens, json!({ "password": PASSWORD })).await;
    assert_problem(resp, 409, "totp_already_enabled").await;
    let notice = smtp.nth(&email, 1).await;
    assert_eq!(notice.subject, "Two-step sign-in was turned on");

    // A login now stops after the password: no session is opened.
    let sessions_before = app.sql_or_count_sessions(&tokens).await;
    let token = mfa_token(&app, &email).await;
    assert!(token.starts_with("lk_mfa_") && token.len() == 7 + 43, "{token}");
    assert_eq!(app.sql_or_count_sessions(&tokens).await, sessions_before, "no session before the second factor");
    // The code confirmation used is spent: the same step is refused.
    let resp = verify(&app, json!({ "mfa_token": token, "code": totp_at_step(&secret, now) })).await;
    assert_problem(resp, 401, "invalid_mfa_code").await;
    app.advance(Duration::seconds(30));
    let code = totp_at_step(&secret, step_of(app.now()));
    let signed_in = verify(&app, json!({ "mfa_token": token, "code": code })).await;
    assert_eq!(signed_in.status(), 200);
    assert_eq!(signed_in.headers()["cache-control"], "no-store");
    let signed_in: Value = signed_in.json().await.unwrap();
    assert_eq!(signed_in["onboarding_required"], true);
    let jwks = app.jwks().await;
    assert_eq!(amr(&jwks, &signed_in), json!(["pwd", "otp", "mfa"]));
    // Refreshes keep the session's amr.
    let refreshed: Value = app.refresh(signed_in["refresh_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(amr(&jwks, &refreshed), json!(["pwd", "otp", "mfa"]));
    // The token is single use, and so is the code.
    let again = verify(&app, json!({ "mfa_token": token, "code": code })).await;
    assert_problem(again, 401, "invalid_mfa_token").await;
    let next = mfa_token(&app, &email).await;
    assert_problem(verify(&app, json!({ "mfa_token": next, "code": code })).await, 401, "invalid_mfa_code").await;

    // One step of drift either way is accepted; two are not.
    app.advance(Duration::seconds(90));
    let behind = totp_at_step(&secret, step_of(app.now()) - 1);
    assert_eq!(verify(&app, json!({ "mfa_token": next, "code": behind })).await.status(), 200);
    app.advance(Duration::seconds(90));
    let token = mfa_token(&app, &email).await;
    let far_ahead = totp_at_step(&secret, step_of(app.now()) + 2);
    assert_problem(verify(&app, json!({ "mfa_token": token, "code": far_ahead })).await, 401, "invalid_mfa_code").await;
    let ahead = totp_at_step(&secret, step_of(app.now()) + 1);
    let resp = verify(&app, json!({ "mfa_token": token, "code": ahead, "token_delivery": "cookie" })).await;
    assert_eq!(resp.status(), 200);
    let cookie =
        resp.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect::<Vec<_>>();
    assert!(cookie.iter().any(|c| c.starts_with("__Host-lk_refresh=lk_rt_") && c.contains("HttpOnly")), "{cookie:?}");
    let body: Value = resp.json().await.unwrap();
    assert!(body.get("refresh_token").is_none() && body["csrf_token"].is_string(), "{body}");

    // A recovery code, typed any way, works once and is told by mail.
    let token = mfa_token(&app, &email).await;
    let typed = format!(" {} ", recovery[0].to_uppercase());
    let resp = verify(&app, json!({ "mfa_token": token, "recovery_code": typed })).await;
    assert_eq!(resp.status(), 200);
    let by_recovery: Value = resp.json().await.unwrap();
    assert_eq!(amr(&jwks, &by_recovery), json!(["pwd", "otp", "mfa"]));
    let token = mfa_token(&app, &email).await;
    let resp = verify(&app, json!({ "mfa_token": token, "recovery_code": recovery[0] })).await;
    assert_problem(resp, 401, "invalid_mfa_code").await;
    assert_eq!(status(&app, &tokens).await["recovery_codes_left"], 9);
    assert_eq!(smtp.nth(&email, 2).await.subject, "A recovery code was used to sign in");
    // Exactly one of the two.
    for body in
        [json!({ "mfa_token": token }), json!({ "mfa_token": token, "code": ahead, "recovery_code": recovery[1] })]
    {
        assert_problem(verify(&app, body).await, 400, "malformed_request").await;
    }

    // New recovery codes need a second factor; the old set dies.
    let resp = post(&app, "/v1/users/me/mfa/recovery-codes", &tokens, json!({ "code": "000000" })).await;
    assert_problem(resp, 400, "invalid_mfa_code").await;
    // (The step after this one was used above, one step ahead.)
    app.advance(Duration::seconds(60));
    let code = totp_at_step(&secret, step_of(app.now()));
    let resp = post(&app, "/v1/users/me/mfa/recovery-codes", &tokens, json!({ "code": code })).await;
    assert_eq!(resp.status(), 200);
    let fresh: Value = resp.json().await.unwrap();
    let fresh: Vec<String> =
        fresh["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().into()).collect();
    assert_eq!(fresh.len(), 10);
    assert!(fresh.iter().all(|c| !recovery.contains(c)));
    let token = mfa_token(&app, &email).await;
    let resp = verify(&app, json!({ "mfa_token": token, "recovery_code": recovery[1] })).await;
    assert_problem(resp, 401, "invalid_mfa_code").await;

    // Turning it off needs the password and a second factor.
    let delete = |body: Value| call(&app, reqwest::Method::DELETE, "/v1/users/me/mfa/totp", &tokens, body);
    assert_problem(delete(json!({ "password": PASSWORD, "code": "123456" })).await, 400, "invalid_mfa_code").await;
    let resp = delete(json!({ "password": "Wrong1Password", "code": fresh[0] })).await;
    assert_problem(resp, 403, "invalid_current_password").await;
    assert_eq!(status(&app, &tokens).await["recovery_codes_left"], 10, "a refused removal used no code");
    assert_eq!(delete(json!({ "password": PASSWORD, "code": fresh[0] })).await.status(), 204);
    assert_eq!(status(&app, &tokens).await, json!({ "totp": false, "recovery_codes_left": 0, "passkeys": 0 }));
    let plain: Value = app.login(&email, PASSWORD).await.json().await.unwrap();
    assert_eq!(amr(&jwks, &plain), json!(["pwd"]));
    assert_problem(delete(json!({ "password": PASSWORD, "code": "123456" })).await, 404, "totp_not_enrolled").await;
    // Removing with a recovery code tells of both.
    let subjects: Vec<String> = smtp.wait_for(&email, 4).await.into_iter().map(|m| m.subject).collect();
    assert!(subjects.contains(&"Two-step sign-in was turned off".to_string()), "{subjects:?}");

    let kinds = event_kinds(&app, &tokens).await;
    for kind in ["mfa_enabled", "mfa_failed", "recovery_code_used", "recovery_codes_regenerated", "mfa_disabled"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
}
on_both_backends!(the_whole_totp_journey);

impl TestApp {
    /// The caller's live sessions, as the API lists them.
    async fn sql_or_count_sessions(&self, tokens: &Value) -> usize {
        let resp = self.client.get(self.url("/v1/sessions")).bearer_auth(access(tokens)).send().await.unwrap();
        let list: Value = resp.json().await.unwrap();
        list["sessions"].as_array().unwrap().len()
    }
}

async fn an_mfa_token_takes_five_codes_and_five_minutes(backend: Backend) {
    let options = Options::backend(backend).env("LATCHKEY_RATE_LIMIT_LOGIN_PER_ACCOUNT", "100");
    let app = spawn_with_clock(options).await;
    let email = address();
    let tokens = app.new_session_for(&email).await;
    let (secret, _) = enable_totp(&app, &tokens, Some(PASSWORD)).await;
    app.advance(Duration::seconds(30));

    let token = mfa_token(&app, &email).await;
    for _ in 0..5 {
        assert_problem(verify(&app, json!({ "mfa_token": token, "code": "000000" })).await, 401, "invalid_mfa_code")
            .await;
    }
    let right = totp_at_step(&secret, step_of(app.now()));
    assert_problem(verify(&app, json!({ "mfa_token": token, "code": right })).await, 401, "invalid_mfa_token").await;

    let token = mfa_token(&app, &email).await;
    app.advance(Duration::seconds(301));
    let right = totp_at_step(&secret, step_of(app.now()));
    assert_problem(verify(&app, json!({ "mfa_token": token, "code": right })).await, 401, "invalid_mfa_token").await;

    let unknown = format!("lk_mfa_{}", "A".repeat(43));
    for token in [unknown.as_str(), "lk_mfa_short", "", "lk_rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
        let resp = verify(&app, json!({ "mfa_token": token, "code": right })).await;
        assert_problem(resp, 401, "invalid_mfa_token").await;
    }
    // The right code still works with a live token.
    let token = mfa_token(&app, &email).await;
    assert_eq!(verify(&app, json!({ "mfa_token": token, "code": right })).await.status(), 200);
}
on_both_backends!(an_mfa_token_takes_five_codes_and_five_minutes);

/// Codes tried count toward the account's failed-login limit (5 by
/// default), across tokens and with the password step: knowing the
/// password does not buy more guesses.
async fn codes_count_toward_the_login_limit_and_the_password_does_not_reset_it(backend: Backend) {
    let app = spawn_with_clock(Options::backend(backend)).await;
    let email = address();
    let tokens = app.new_session_for(&email).await;
    let (secret, _) = enable_totp(&app, &tokens, Some(PASSWORD)).await;
    app.advance(Duration::seconds(30));
    // Confirmation cleared the count. Password (1), two wrong codes (2, 3),
    // password again (4), one wrong code (5): the limit is spent.
    let token = mfa_token(&app, &email).await;
    for _ in 0..2 {
        assert_problem(verify(&app, json!({ "mfa_token": token, "code": "000000" })).await, 401, "invalid_mfa_code")
            .await;
    }
    let token = mfa_token(&app, &email).await;
    assert_problem(verify(&app, json!({ "mfa_token": token, "code": "000000" })).await, 401, "invalid_mfa_code").await;
    let right = totp_at_step(&secret, step_of(app.now()));
    assert_problem(verify(&app, json!({ "mfa_token": token, "code": right })).await, 429, "rate_limited").await;
    assert_problem(app.login(&email, PASSWORD).await, 429, "rate_limited").await;
    // A bearer token is no way around it either.
    let resp = post(&app, "/v1/users/me/mfa/recovery-codes", &tokens, json!({ "code": right })).await;
    assert_problem(resp, 429, "rate_limited").await;
}
on_both_backends!(codes_count_toward_the_login_limit_and_the_password_does_not_reset_it);

/// A password change proves the password, and for an account with TOTP
/// that does not clear the count of codes tried behind a bearer token.
async fn a_password_change_does_not_buy_more_code_guesses(backend: Backend) {
    let app = spawn_with_clock(Options::backend(backend)).await;
    let email = address();
    let tokens = app.new_session_for(&email).await;
    enable_totp(&app, &tokens, Some(PASSWORD)).await;
    for _ in 0..4 {
        let resp = post(&app, "/v1/users/me/mfa/recovery-codes", &tokens, json!({ "code": "000000" })).await;
        assert_problem(resp, 400, "invalid_mfa_code").await;
    }
    let change = json!({ "current_password": PASSWORD, "new_password": "Brand9NewSecret" });
    assert_eq!(post(&app, "/v1/auth/password/change", &tokens, change).await.status(), 200);
    let resp = post(&app, "/v1/users/me/mfa/recovery-codes", &tokens, json!({ "code": "000000" })).await;
    assert_problem(resp, 429, "rate_limited").await;
}
on_both_backends!(a_password_change_does_not_buy_more_code_guesses);

/// Someone signed up with another person's address and set up TOTP while
/// the address was never proven (an account made while verification was
/// required, used after it was turned off: here the address is marked
/// unproven by SQL). When the owner signs in with Google, which vouches for
/// the address, the squatter's factor goes with their password.
#[tokio::test]
async fn a_factor_on_an_unproven_account_does_not_lock_out_its_owner() {
    let provider = Provider::start().await;
    let app = spawn_with_clock(provider.configure(Options::default())).await;
    let squatter = app.new_session_for("ada@example.com").await;
    enable_totp(&app, &squatter, Some(PASSWORD)).await;
    let pending = mfa_token(&app, "ada@example.com").await;
    app.sql("UPDATE users SET email_verified_at = NULL WHERE email_key = 'ada@example.com'");
    // And a passkey of theirs (a row as registration stores it; it never signs anyone in here).
    app.sql(
        "INSERT INTO passkeys (id, user_id, credential_id, credential, sign_count, name, created_at) \
         SELECT gen_random_uuid(), id, '\\x01', '{}', 0, 'squatter', now() FROM users WHERE email_key = 'ada@example.com'",
    );

    let owner = app.google_login(&provider, "ada@example.com").await;
    assert_eq!(amr(&app.jwks().await, &owner), json!(["google"]), "no second step for the owner");
    assert_eq!(status(&app, &owner).await, json!({ "totp": false, "recovery_codes_left": 0, "passkeys": 0 }));
    assert_problem(app.login("ada@example.com", PASSWORD).await, 401, "invalid_credentials").await;
    assert_eq!(app.sql("SELECT count(*) FROM passkeys"), "0", "the squatter's passkey went too");
    let resp = verify(&app, json!({ "mfa_token": pending, "code": "000000" })).await;
    assert_problem(resp, 401, "invalid_mfa_token").await;
}

/// Without `mfa.key`, accounts with TOTP could never pass a code again: the
/// server refuses to start rather than make a new key.
#[tokio::test]
async fn the_server_refuses_to_start_without_the_key_its_factors_were_sealed_with() {
    let mut app = spawn_with(Options::default()).await;
    let tokens = app.new_session().await;
    enable_totp(&app, &tokens, Some(PASSWORD)).await;
    app.kill();
    app.wait().await;
    std::fs::remove_file(app.keys_dir().join("mfa.key")).unwrap();
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), app.cli(&["serve"])).await.expect("it exits");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("mfa.key is missing"), "{stderr}");
    assert!(!app.keys_dir().join("mfa.key").exists(), "no new key was made");
}

/// Released at once, each on its own connection: twenty codes against one
/// token get at most five checked; one right code over ten tokens opens
/// one session.
async fn bursts_get_no_more_than_their_number(backend: Backend) {
    let options = Options::backend(backend).env("LATCHKEY_RATE_LIMIT_LOGIN_PER_ACCOUNT", "1000");
    let app = spawn_with_clock(options).await;
    let email = address();
    let tokens = app.new_session_for(&email).await;
    let (secret, recovery) = enable_totp(&app, &tokens, Some(PASSWORD)).await;
    app.advance(Duration::seconds(30));

    let token = mfa_token(&app, &email).await;
    let codes: Vec<String> = (0..20).map(|i| format!("{:06}", 100_000 + i)).collect();
    let base = app.base.clone();
    let answers = burst_with(20, &app.base, move |i, client| {
        let (base, token, code) = (base.clone(), token.clone(), codes[i].clone());
        async move {
            let resp =
                client.post(format!("{base}/v1/auth/mfa/verify")).json(&json!({ "mfa_token": token, "code": code }));
            let body: Value = resp.send().await.unwrap().json().await.unwrap();
            body["code"].as_str().unwrap_or("ok").to_string()
        }
    })
    .await;
    let checked = answers.iter().filter(|a| *a == "invalid_mfa_code").count();
    assert_eq!(checked, 5, "five codes checked, no more: {answers:?}");
    assert_eq!(checked + answers.iter().filter(|a| *a == "invalid_mfa_token").count(), 20, "{answers:?}");

    let right = totp_at_step(&secret, step_of(app.now()));
    let mut tokens_list = Vec::new();
    for _ in 0..10 {
        tokens_list.push(mfa_token(&app, &email).await);
    }
    let base = app.base.clone();
    let statuses = burst_with(10, &app.base, move |i, client| {
        let (base, token, code) = (base.clone(), tokens_list[i].clone(), right.clone());
        async move {
            let resp =
                client.post(format!("{base}/v1/auth/mfa/verify")).json(&json!({ "mfa_token": token, "code": code }));
            resp.send().await.unwrap().status().as_u16()
        }
    })
    .await;
    assert_eq!(count(&statuses, 200), 1, "one session for one code: {statuses:?}");
    assert_eq!(count(&statuses, 401), 9, "{statuses:?}");

    // One recovery code, ten tokens at once: one passes.
    let mut tokens_list = Vec::new();
    for _ in 0..10 {
        tokens_list.push(mfa_token(&app, &email).await);
    }
    let (base, code) = (app.base.clone(), recovery[3].clone());
    let statuses = burst_with(10, &app.base, move |i, client| {
        let (base, token, code) = (base.clone(), tokens_list[i].clone(), code.clone());
        async move {
            let body = json!({ "mfa_token": token, "recovery_code": code });
            client.post(format!("{base}/v1/auth/mfa/verify")).json(&body).send().await.unwrap().status().as_u16()
        }
    })
    .await;
    assert_eq!(count(&statuses, 200), 1, "a recovery code works once: {statuses:?}");
    assert_eq!(status(&app, &tokens).await["recovery_codes_left"], 9);
}
on_both_backends!(bursts_get_no_more_than_their_number);

/// The writes of enrollment, released at once: one right code confirms once
/// (one set of recovery codes), renewals with different passing codes
/// leave one set, and wrong codes get the account limit's number checked.
async fn enrollment_bursts_hold(backend: Backend) {
    let app = spawn_with_clock(Options::backend(backend).env("LATCHKEY_RATE_LIMIT_LOGIN_PER_ACCOUNT", "1000")).await;
    let tokens = app.new_session().await;
    let resp = post(&app, "/v1/users/me/mfa/totp", &tokens, json!({ "password": PASSWORD })).await;
    let secret = base32_decode(resp.json::<Value>().await.unwrap()["secret"].as_str().unwrap());
    let code = totp_at_step(&secret, step_of(app.now()));
    let (base, bearer) = (app.base.clone(), access(&tokens).to_string());
    let confirmations = burst_with(10, &app.base, move |_, client| {
        let (base, bearer, code) = (base.clone(), bearer.clone(), code.clone());
        async move {
            let resp = client.post(format!("{base}/v1/users/me/mfa/totp/confirm")).bearer_auth(bearer);
            resp.json(&json!({ "code": code })).send().await.unwrap().status().as_u16()
        }
    })
    .await;
    assert_eq!(count(&confirmations, 200), 1, "one confirmation: {confirmations:?}");
    // The others are refused: the code was used (400), or, read after the
    // winner, there is no pending enrollment left (404).
    assert_eq!(count(&confirmations, 400) + count(&confirmations, 404), 9, "{confirmations:?}");
    assert_eq!(status(&app, &tokens).await["recovery_codes_left"], 10);

    // Five renewals at once, each with a recovery code of its own: all pass, one set is left.
    let resp = post(&app, "/v1/users/me/mfa/recovery-codes", &tokens, json!({ "code": "000000" })).await;
    assert_problem(resp, 400, "invalid_mfa_code").await;
    app.advance(Duration::seconds(30));
    let code = totp_at_step(&secret, step_of(app.now()));
    let fresh: Value =
        post(&app, "/v1/users/me/mfa/recovery-codes", &tokens, json!({ "code": code })).await.json().await.unwrap();
    let fresh: Vec<String> =
        fresh["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().into()).collect();
    let (base, bearer) = (app.base.clone(), access(&tokens).to_string());
    let renewals = burst_with(5, &app.base, move |i, client| {
        let (base, bearer, code) = (base.clone(), bearer.clone(), fresh[i].clone());
        async move {
            let resp = client.post(format!("{base}/v1/users/me/mfa/recovery-codes")).bearer_auth(bearer);
            resp.json(&json!({ "code": code })).send().await.unwrap().status().as_u16()
        }
    })
    .await;
    assert_eq!(count(&renewals, 200), 5, "{renewals:?}");
    assert_eq!(status(&app, &tokens).await["recovery_codes_left"], 10, "one set, not five");
}
on_both_backends!(enrollment_bursts_hold);

/// Wrong codes released at once behind a bearer token: the account limit
/// (5) lets five be checked, the rest are refused unchecked.
async fn a_burst_of_codes_gets_the_account_limit(backend: Backend) {
    let app = spawn_with(Options::backend(backend)).await;
    let tokens = app.new_session().await;
    // Enrolling counts two checks; the passing confirmation clears them.
    enable_totp(&app, &tokens, Some(PASSWORD)).await;
    let (base, bearer) = (app.base.clone(), access(&tokens).to_string());
    let answers = burst_with(12, &app.base, move |i, client| {
        let (base, bearer) = (base.clone(), bearer.clone());
        async move {
            let resp = client.post(format!("{base}/v1/users/me/mfa/recovery-codes")).bearer_auth(bearer);
            let code = format!("{:06}", 100_000 + i);
            resp.json(&json!({ "code": code })).send().await.unwrap().status().as_u16()
        }
    })
    .await;
    assert_eq!(count(&answers, 400), 5, "five checked: {answers:?}");
    assert_eq!(count(&answers, 429), 7, "{answers:?}");
}
on_both_backends!(a_burst_of_codes_gets_the_account_limit);

/// Secrets at rest and in the log: the TOTP secret is sealed (not in the
/// row), recovery codes and the `mfa_token` are hashed, and none of them,
/// nor a code, is ever logged, at `trace`.
#[tokio::test]
async fn no_second_factor_secret_is_stored_in_the_clear_or_logged() {
    let app = spawn_with(Options::default().env("LATCHKEY_LOG", "trace")).await;
    let email = address();
    let tokens = app.new_session_for(&email).await;
    let (secret, recovery) = enable_totp(&app, &tokens, Some(PASSWORD)).await;
    // Two logins, one with the next step's code (one step of drift is fine), one with a recovery code.
    let token = mfa_token(&app, &email).await;
    let code = totp_at_step(&secret, step_of(app.now()) + 1);
    assert_eq!(verify(&app, json!({ "mfa_token": token, "code": code })).await.status(), 200);
    let second = mfa_token(&app, &email).await;
    assert_eq!(verify(&app, json!({ "mfa_token": second, "recovery_code": recovery[0] })).await.status(), 200);

    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let sealed = app.sql("SELECT encode(secret_sealed, 'hex') FROM mfa_totp");
    assert!(!sealed.is_empty() && !sealed.contains(&hex(&secret)), "the secret is sealed");
    assert!(sealed.len() >= 2 * (12 + 20 + 16), "nonce, ciphertext and tag");
    // Nine codes left, each a 32-byte keyed hash: not the code's plain SHA-256.
    assert_eq!(app.sql("SELECT count(*), min(length(hash)), max(length(hash)) FROM recovery_codes"), "9|32|32");
    let stored = app.sql("SELECT string_agg(encode(hash, 'hex'), ',') FROM recovery_codes");
    for code in &recovery {
        let plain = ring::digest::digest(&ring::digest::SHA256, code.replace('-', "").as_bytes());
        assert!(!stored.contains(&hex(plain.as_ref())), "recovery codes are keyed, not plain hashes");
    }
    assert_eq!(app.sql("SELECT count(*) FROM mfa_challenges WHERE used_at IS NOT NULL"), "2");

    let log = app.logs().join("\n");
    assert!(log.contains("TOTP enabled"), "the log is captured");
    // (A six-digit code is left out: such digits turn up in any log by chance.)
    let base32 = data_encoding_base32(&secret);
    for secret_text in [base32.as_str(), token.as_str(), second.as_str()] {
        assert!(!log.contains(secret_text), "{secret_text} was logged");
    }
    for code in &recovery {
        assert!(!log.contains(code.as_str()) && !log.contains(&code.replace('-', "")), "a recovery code was logged");
    }
}

fn data_encoding_base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut value, mut out) = (0u32, 0u64, String::new());
    for b in bytes {
        value = (value << 8) | u64::from(*b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((value >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((value << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// A Google sign-in of an account with TOTP ends in the same challenge;
/// an account without a password enrolls within five minutes of logging in.
async fn a_provider_sign_in_asks_for_the_second_factor_too(backend: Backend) {
    let provider = Provider::start().await;
    let app = spawn_with_clock(provider.configure(Options::backend(backend))).await;
    let first = app.google_login(&provider, "grace@example.com").await;
    let (secret, _) = enable_totp(&app, &first, None).await;
    app.advance(Duration::seconds(30));

    let back = app.google_sign_in(&provider, "grace@example.com").await;
    let code = param(&back, "code").expect("a login code");
    let body = assert_problem(app.oauth_exchange(&code).await, 403, "mfa_required").await;
    let token = body["mfa_token"].as_str().unwrap();
    assert_eq!(body["methods"], json!(["totp", "recovery_code"]));
    // The login code is used up by the exchange that asked for the second factor.
    assert_problem(app.oauth_exchange(&code).await, 400, "invalid_code").await;
    let totp = totp_at_step(&secret, step_of(app.now()));
    let resp = verify(&app, json!({ "mfa_token": token, "code": totp })).await;
    assert_eq!(resp.status(), 200);
    let signed_in: Value = resp.json().await.unwrap();
    assert_eq!(amr(&app.jwks().await, &signed_in), json!(["google", "otp", "mfa"]));

    // Past five minutes, an account without a password must log in again to enroll or remove.
    app.advance(Duration::seconds(301));
    let resp =
        call(&app, reqwest::Method::DELETE, "/v1/users/me/mfa/totp", &signed_in, json!({ "code": "123456" })).await;
    assert_problem(resp, 403, "reauthentication_required").await;
}
on_both_backends!(a_provider_sign_in_asks_for_the_second_factor_too);

/// A password reset signs everyone out but leaves the second factor on.
#[tokio::test]
async fn a_password_reset_keeps_the_second_factor() {
    let smtp = SmtpServer::start().await;
    let options = Options::default()
        .env("LATCHKEY_SMTP_URL", smtp.url())
        .env("LATCHKEY_MAIL_POLL_MS", "100")
        .env("LATCHKEY_APP_URL", "http://app.test");
    let app = spawn_with(options).await;
    let email = address();
    let tokens = app.new_session_for(&email).await;
    enable_totp(&app, &tokens, Some(PASSWORD)).await;
    assert_eq!(smtp.nth(&email, 1).await.subject, "Two-step sign-in was turned on");
    assert_eq!(app.post("/v1/auth/password/forgot", json!({ "email": email })).await.status(), 202);
    let reset = smtp.nth(&email, 2).await.token("http://app.test/reset-password?token=");
    let resp = app.post("/v1/auth/password/reset", json!({ "token": reset, "new_password": "Brand9NewSecret" })).await;
    assert_eq!(resp.status(), 200);
    let body = assert_problem(app.login(&email, "Brand9NewSecret").await, 403, "mfa_required").await;
    assert!(body["mfa_token"].as_str().unwrap().starts_with("lk_mfa_"));
}
