//! Sign in with Google, against a real OpenID provider running locally
//! (`tests/oidc`): accounts created, found and linked, and every way a
//! sign-in can fail sending the browser back with an `error` and changing nothing.

use serde_json::{Value, json};
use url::Url;

use crate::{
    helpers::{Backend, Options, PASSWORD, TestApp, assert_problem, spawn_app, spawn_with},
    oidc::{APP, Provider, Started, found, param},
    on_both_backends,
    smtp::free_port,
    tokens::verify_with_jwks,
};

fn access(tokens: &Value) -> &str {
    tokens["access_token"].as_str().unwrap()
}

async fn me(app: &TestApp, tokens: &Value) -> Value {
    let resp = app.me(access(tokens)).await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

async fn get(app: &TestApp, path: &str, tokens: &Value) -> Value {
    let resp = app.client.get(app.url(path)).bearer_auth(access(tokens)).send().await.unwrap();
    assert_eq!(resp.status(), 200, "GET {path}");
    resp.json().await.unwrap()
}

async fn event_kinds(app: &TestApp, tokens: &Value) -> Vec<String> {
    let page = get(app, "/v1/users/me/events", tokens).await;
    page["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap().to_string()).collect()
}

/// Where the browser was sent back to, asserting it is the app with `error` and no code.
fn assert_sent_back_with_error(back: &Url, error: &str) {
    assert!(back.as_str().starts_with(APP), "sent back to {back}");
    assert_eq!(param(back, "error").as_deref(), Some(error), "{back}");
    assert_eq!(param(back, "code"), None, "{back}");
}

async fn first_login_creates_a_verified_user_and_the_next_finds_it(backend: Backend) {
    let provider = Provider::start().await;
    let app = spawn_with(provider.configure(Options::backend(backend))).await;

    let first = app.google_login(&provider, "alice@example.com").await;
    assert_eq!(first["is_new_user"], true);
    assert_eq!(first["onboarding_required"], true);
    assert_eq!(first["token_type"], "Bearer");
    assert!(first["refresh_token"].as_str().unwrap().starts_with("lk_rt_"));
    let user = me(&app, &first).await;
    assert_eq!(user["email"], "alice@example.com");
    assert_eq!(user["email_verified"], true);
    assert_eq!(user["name"], "alice");
    // Verified through the JWKS alone, and it says how the person signed in.
    let claims = verify_with_jwks(access(&first), &app.jwks().await).claims;
    assert_eq!(claims["sub"], user["id"]);
    assert_eq!(claims["amr"], json!(["google"]));
    let sessions = get(&app, "/v1/sessions", &first).await;
    assert_eq!(sessions["sessions"][0]["method"], "google");
    assert_eq!(app.refresh(first["refresh_token"].as_str().unwrap()).await.status(), 200);

    // Another browser, another sign-in: the same user, not a new one.
    let second = app.google_login(&provider, "alice@example.com").await;
    assert_eq!(second["is_new_user"], false);
    assert_ne!(second["session_id"], first["session_id"]);
    assert_eq!(me(&app, &second).await["id"], user["id"]);
    // Onboarding is asked for until the profile exists, then not.
    let profile = json!({ "robotics_experience": "none", "ai_ml_experience": "beginner", "learning_goals": "x" });
    let saved = app.client.put(app.url("/v1/users/me/profile")).bearer_auth(access(&second)).json(&profile);
    assert_eq!(saved.send().await.unwrap().status(), 200);
    let third = app.google_login(&provider, "alice@example.com").await;
    assert_eq!(third["onboarding_required"], false);

    // The account has no password: no password logs in to it.
    assert_problem(app.login("alice@example.com", PASSWORD).await, 401, "invalid_credentials").await;
    let kinds = event_kinds(&app, &third).await;
    assert!(kinds.contains(&"signup".to_string()) && kinds.contains(&"identity_linked".to_string()), "{kinds:?}");
}
on_both_backends!(first_login_creates_a_verified_user_and_the_next_finds_it);

#[tokio::test]
async fn a_login_code_works_once_and_its_replay_ends_the_session() {
    let provider = Provider::start().await;
    let app = spawn_with(provider.configure(Options::default())).await;
    let back = app.google_sign_in(&provider, "bea@example.com").await;
    let code = param(&back, "code").unwrap();
    assert!(code.starts_with("lk_oc_"), "{code}");
    let first = app.oauth_exchange(&code).await;
    assert_eq!(first.headers()["cache-control"], "no-store");
    let tokens: Value = first.json().await.unwrap();

    assert_problem(app.oauth_exchange(&code).await, 400, "invalid_code").await;
    // Someone else held the code: the session it opened is over.
    assert_problem(app.refresh(tokens["refresh_token"].as_str().unwrap()).await, 401, "invalid_refresh_token").await;
    assert_eq!(app.me(access(&tokens)).await.status(), 401);
    // … and every resource server hears of it through the status list.
    crate::revocation::wait_for_bit(&app, access(&tokens), 1, std::time::Duration::from_secs(5)).await;

    for garbage in ["", "lk_oc_short", "not-a-code", &code.replace("lk_oc_", "lk_rt_")] {
        assert_problem(app.oauth_exchange(garbage).await, 400, "invalid_code").await;
    }
    // Codes last 60 s.
    let back = app.google_sign_in(&provider, "bea@example.com").await;
    app.sql("UPDATE oauth_login_codes SET expires_at = now() - interval '1 second' WHERE used_at IS NULL");
    assert_problem(app.oauth_exchange(&param(&back, "code").unwrap()).await, 400, "invalid_code").await;
}

#[tokio::test]
async fn a_verified_account_with_the_same_address_is_linked_and_keeps_its_password() {
    let provider = Provider::start().await;
    // Verification is off in these servers: a sign-up is verified at once.
    let app = spawn_with(provider.configure(Options::default())).await;
    let by_password = app.new_session_for("carol@example.com").await;
    let user = me(&app, &by_password).await;

    let by_google = app.google_login(&provider, "carol@example.com").await;
    assert_eq!(by_google["is_new_user"], false);
    assert_eq!(me(&app, &by_google).await["id"], user["id"]);
    assert_eq!(app.login("carol@example.com", PASSWORD).await.status(), 200);
    assert_eq!(app.refresh(by_password["refresh_token"].as_str().unwrap()).await.status(), 200);
    assert_eq!(app.sql("SELECT count(*) FROM users"), "1");
    assert_eq!(app.sql("SELECT count(*) FROM identities"), "1");
    assert!(event_kinds(&app, &by_google).await.contains(&"identity_linked".to_string()));
}

#[tokio::test]
async fn linking_an_unverified_account_removes_the_squatters_password() {
    let provider = Provider::start().await;
    let options = Options::default().env("LATCHKEY_REQUIRE_EMAIL_VERIFICATION", "true");
    let app = spawn_with(provider.configure(options)).await;
    // Someone signs up with an address they do not own and cannot verify.
    assert_eq!(app.signup("dave@example.com", PASSWORD).await.status(), 202);
    assert_problem(app.login("dave@example.com", PASSWORD).await, 403, "email_not_verified").await;
    let squatter_id = app.sql("SELECT id FROM users WHERE email = 'dave@example.com'");

    // The owner signs in with Google.
    let owner = app.google_login(&provider, "dave@example.com").await;
    let user = me(&app, &owner).await;
    assert_eq!(user["id"], squatter_id.as_str());
    assert_eq!(user["email_verified"], true);
    assert_eq!(owner["is_new_user"], false);
    assert_eq!(owner["onboarding_required"], true);
    // The squatter's password is gone: it no longer even reaches "not verified".
    assert_problem(app.login("dave@example.com", PASSWORD).await, 401, "invalid_credentials").await;
    assert_eq!(app.sql("SELECT password_hash IS NULL FROM users"), "t");
    let kinds = event_kinds(&app, &owner).await;
    assert!(kinds.contains(&"password_removed".to_string()), "{kinds:?}");
}

/// Waits for the log line of a failed sign-in.
async fn logged(app: &TestApp, code: &str) {
    app.wait_for_log(&format!("sign-in with google failed ({code})")).await;
}

#[tokio::test]
async fn failures_send_the_browser_back_with_an_error_and_change_nothing() {
    let mut provider = Provider::start().await;
    let app = spawn_with(provider.configure(Options::default())).await;
    app.new_session_for("existing@example.com").await;
    let accounts = || app.sql("SELECT id, email, password_hash, email_verified_at, name, updated_at FROM users");
    let links = || app.sql("SELECT count(*) FROM identities");
    let before = (accounts(), links());

    // The person declines at the provider.
    let started = app.google_start().await;
    let back = found(&app.google_callback(&provider.deny(started.url.as_str()).await, &started).await);
    assert_sent_back_with_error(&back, "access_denied");
    logged(&app, "access_denied").await;

    // The provider does not vouch for the address.
    let started = app.google_start().await;
    let callback = provider.sign_in(started.url.as_str(), "unverified-frank@example.com").await;
    assert_sent_back_with_error(&found(&app.google_callback(&callback, &started).await), "email_not_verified");
    logged(&app, "email_not_verified").await;

    // A code minted for a different nonce (an attacker's own authorization
    // request, carrying this sign-in's state and PKCE challenge).
    let started = app.google_start().await;
    let mut forged = started.url.clone();
    let pairs: Vec<(String, String)> = started
        .url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "nonce" { "attackers-nonce".into() } else { v.into_owned() };
            (k.into_owned(), v)
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    let callback = provider.sign_in(forged.as_str(), "mallory@example.com").await;
    assert_sent_back_with_error(&found(&app.google_callback(&callback, &started).await), "nonce_mismatch");
    logged(&app, "nonce_mismatch").await;

    // A state that was never issued, or none: no safe place to go back to.
    let forged_state = format!("{}?state=made-up&code=abc", app.url("/v1/auth/oauth/google/callback"));
    assert_problem(app.client.get(forged_state).send().await.unwrap(), 400, "invalid_state").await;
    let no_state = app.url("/v1/auth/oauth/google/callback?code=abc");
    assert_problem(app.client.get(no_state).send().await.unwrap(), 400, "invalid_state").await;
    logged(&app, "invalid_state").await;

    // A state older than 10 minutes.
    let started = app.google_start().await;
    let callback = provider.sign_in(started.url.as_str(), "grace@example.com").await;
    app.sql("UPDATE oauth_states SET expires_at = now() - interval '1 second'");
    assert_problem(app.google_callback(&callback, &started).await, 400, "invalid_state").await;

    assert_eq!((accounts(), links()), before, "failed sign-ins changed accounts");

    // Replays: the provider's redirect delivered twice (the state is used up),
    // and its code presented again under a fresh state (the provider refuses it).
    let started = app.google_start().await;
    let callback = provider.sign_in(started.url.as_str(), "heidi@example.com").await;
    assert!(param(&found(&app.google_callback(&callback, &started).await), "code").is_some());
    let before = (accounts(), links());
    assert_problem(app.google_callback(&callback, &started).await, 400, "invalid_state").await;
    let fresh = app.google_start().await;
    let mut replay = callback.clone();
    let code = param(&callback, "code").unwrap();
    let fresh_state = param(&fresh.url, "state").unwrap();
    replay.query_pairs_mut().clear().append_pair("code", &code).append_pair("state", &fresh_state);
    assert_sent_back_with_error(&found(&app.google_callback(&replay, &fresh).await), "invalid_grant");
    logged(&app, "invalid_grant").await;

    // The provider goes down mid-sign-in.
    let started = app.google_start().await;
    let callback = provider.sign_in(started.url.as_str(), "ivan@example.com").await;
    provider.stop().await;
    assert_sent_back_with_error(&found(&app.google_callback(&callback, &started).await), "provider_unavailable");
    logged(&app, "provider_unavailable").await;
    assert_eq!((accounts(), links()), before, "failed sign-ins changed accounts");
}

#[tokio::test]
async fn an_unreachable_provider_sends_the_browser_straight_back() {
    let down = format!("http://127.0.0.1:{}", free_port());
    let options = Options::default()
        .env("LATCHKEY_GOOGLE_CLIENT_ID", "id")
        .env("LATCHKEY_GOOGLE_CLIENT_SECRET", "secret")
        .env("LATCHKEY_GOOGLE_ISSUER", &down)
        .env("LATCHKEY_APP_URL", "http://app.test");
    let app = spawn_with(options).await;
    let back = found(&app.google_authorize(APP).await);
    assert_sent_back_with_error(&back, "provider_unavailable");
    assert_eq!(app.sql("SELECT count(*) FROM oauth_states"), "0");
}

#[tokio::test]
async fn redirect_to_must_be_an_allowed_app_url() {
    let provider = Provider::start().await;
    let options = Options::default().env("LATCHKEY_REDIRECT_ALLOW_LIST", "https://admin.example.com/console");
    let app = spawn_with(provider.configure(options)).await;

    for bad in [
        "https://evil.example.com/",
        "http://app.test.evil.example.com/",
        "https://app.test/",
        "http://user@app.test/",
        "https://admin.example.com/consoleX",
        "javascript:alert(1)",
        "/relative",
    ] {
        assert_problem(app.google_authorize(bad).await, 400, "invalid_redirect").await;
    }
    for good in ["http://app.test/", "http://app.test/deep/path?keep=1", "https://admin.example.com/console/x"] {
        let to = found(&app.google_authorize(good).await);
        assert!(to.as_str().starts_with(&format!("{}/auth?", provider.issuer)), "{good} -> {to}");
        for (name, expected) in [("code_challenge_method", Some("S256")), ("response_type", Some("code"))] {
            assert_eq!(param(&to, name).as_deref(), expected);
        }
        assert!(
            param(&to, "nonce").is_some() && param(&to, "state").is_some() && param(&to, "code_challenge").is_some()
        );
    }
    // Without redirect_to, the app URL.
    let resp = app.client.get(app.url("/v1/auth/oauth/google/authorize")).send().await.unwrap();
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let started = Started::from(resp);
    let callback = provider.sign_in(started.url.as_str(), "judy@example.com").await;
    let back = found(&app.google_callback(&callback, &started).await);
    assert!(back.as_str().starts_with("http://app.test/?code=lk_oc_"), "{back}");
}

#[tokio::test]
async fn a_sign_in_under_way_stores_nothing_that_could_finish_it() {
    let provider = Provider::start().await;
    let app = spawn_with(provider.configure(Options::default())).await;
    let to = found(&app.google_authorize("http://app.test/").await);
    let (state, nonce) = (param(&to, "state").unwrap(), param(&to, "nonce").unwrap());
    // One row: the state's hash and where to go back to. No nonce, no PKCE verifier, no state.
    let columns = app.sql(
        "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns \
         WHERE table_name = 'oauth_states'",
    );
    assert_eq!(columns, "app_code_challenge,created_at,expires_at,hash,provider,redirect_to");
    let row = app.sql("SELECT encode(hash, 'hex') || ' ' || redirect_to FROM oauth_states");
    assert!(!row.contains(&state) && !row.contains(&nonce), "{row}");
}

#[tokio::test]
async fn without_a_client_the_endpoints_say_not_configured() {
    let app = spawn_app().await;
    assert_problem(app.google_authorize(APP).await, 404, "provider_not_configured").await;
    let callback = app.url("/v1/auth/oauth/google/callback?state=x&code=y");
    assert_problem(app.client.get(callback).send().await.unwrap(), 404, "provider_not_configured").await;
}

#[tokio::test]
async fn a_sign_in_finishes_only_in_the_browser_that_started_it() {
    let provider = Provider::start().await;
    let app = spawn_with(provider.configure(Options::default())).await;
    let resp = app.google_authorize(APP).await;
    let line = resp.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(line.len(), 1, "{line:?}");
    for attribute in ["Path=/", "Max-Age=600", "SameSite=Lax", "HttpOnly", "Secure"] {
        assert!(line[0].split("; ").any(|a| a == attribute), "{attribute} missing: {line:?}");
    }
    let started = Started::from(resp);

    // An attacker signs in with their own account and sends the victim the
    // callback URL: the victim's browser has no (or another) sign-in cookie.
    let callback = provider.sign_in(started.url.as_str(), "attacker@example.com").await;
    assert_problem(app.google_callback_with(&callback, None).await, 400, "invalid_state").await;
    let victims = app.google_start().await;
    assert_problem(app.google_callback_with(&callback, Some(&victims.cookie)).await, 400, "invalid_state").await;
    logged(&app, "invalid_state").await;
    assert_eq!(app.sql("SELECT count(*) FROM users"), "0");
    // The browser that started it still finishes it, and the cookie is cleared.
    let resp = app.google_callback(&callback, &started).await;
    let cleared = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cleared.starts_with("__Host-lk_signin=;") && cleared.contains("Max-Age=0"), "{cleared}");
    assert!(param(&found(&resp), "code").is_some());
}

#[tokio::test]
async fn an_app_can_bind_the_login_code_to_itself_with_pkce() {
    let provider = Provider::start().await;
    let app = spawn_with(provider.configure(Options::default())).await;
    let verifier = "a-verifier-the-app-keeps-to-itself-0123456789";
    // RFC 7636 S256: base64url(SHA-256(verifier)), no padding.
    let challenge = {
        use base64::Engine;
        let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    };
    let start = |challenge: &str, method: &str| {
        let url = Url::parse_with_params(
            &app.url("/v1/auth/oauth/google/authorize"),
            [("redirect_to", APP), ("code_challenge", challenge), ("code_challenge_method", method)],
        )
        .unwrap();
        app.client.get(url).send()
    };
    for (bad, method) in [("short", "S256"), (challenge.as_str(), "plain"), (&"x".repeat(43)[..], "S512")] {
        assert_problem(start(bad, method).await.unwrap(), 400, "invalid_code_challenge").await;
    }

    let started = Started::from(start(&challenge, "S256").await.unwrap());
    let callback = provider.sign_in(started.url.as_str(), "kim@example.com").await;
    let code = param(&found(&app.google_callback(&callback, &started).await), "code").unwrap();
    let exchange = |verifier: Option<&str>| {
        let mut body = json!({ "code": code });
        if let Some(v) = verifier {
            body["code_verifier"] = json!(v);
        }
        app.post("/v1/auth/oauth/exchange", body)
    };
    // Someone who found the code but is not the app: refused, and the code survives.
    assert_problem(exchange(None).await, 400, "invalid_code").await;
    assert_problem(exchange(Some("another-verifier-of-the-right-shape-0123456789")).await, 400, "invalid_code").await;
    assert_eq!(exchange(Some(verifier)).await.status(), 200);

    // A code from a sign-in the app did not start (no challenge) is refused
    // when the app, which always binds, sends its verifier.
    let back = app.google_sign_in(&provider, "kim@example.com").await;
    let planted = param(&back, "code").unwrap();
    let body = json!({ "code": planted, "code_verifier": verifier });
    assert_problem(app.post("/v1/auth/oauth/exchange", body).await, 400, "invalid_code").await;
}

#[tokio::test]
async fn starting_sign_ins_counts_as_login_attempts_of_the_ip() {
    let down = format!("http://127.0.0.1:{}", free_port());
    let options = Options::default()
        .env("LATCHKEY_GOOGLE_CLIENT_ID", "id")
        .env("LATCHKEY_GOOGLE_CLIENT_SECRET", "secret")
        .env("LATCHKEY_GOOGLE_ISSUER", &down)
        .env("LATCHKEY_APP_URL", "http://app.test")
        .env("LATCHKEY_RATE_LIMIT_LOGIN_PER_IP", 2);
    let app = spawn_with(options).await;
    for _ in 0..2 {
        assert_eq!(app.google_authorize(APP).await.status(), 302);
    }
    let refused = app.google_authorize(APP).await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_problem(refused, 429, "rate_limited").await;
}
