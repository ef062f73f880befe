use serde_json::Value;

use crate::{
    helpers::{Backend, Options, PASSWORD, assert_problem, spawn_app, spawn_with},
    on_both_backends,
};

async fn signup_login_and_me(backend: Backend) {
    let app = spawn_with(Options::backend(backend)).await;

    let resp = app.signup("  Ada.Lovelace@Example.COM ", PASSWORD).await;
    assert_eq!(resp.status(), 202);
    let resp = app.login("ada.lovelace@example.com", PASSWORD).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let tokens: Value = resp.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    assert_eq!(tokens["refresh_expires_in"], 7 * 24 * 3600);
    assert!(tokens["refresh_token"].as_str().unwrap().starts_with("lk_rt_"));

    let resp = app.me(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(resp.status(), 200);
    let me: Value = resp.json().await.unwrap();
    assert_eq!(me["email"], "Ada.Lovelace@example.com");
    assert_eq!(me["email_verified"], true);
}
on_both_backends!(signup_login_and_me);

#[tokio::test]
async fn signup_answers_identically_for_new_and_existing_addresses() {
    let app = spawn_app().await;
    let first = app.signup("grace@example.com", PASSWORD).await;
    let (status, body) = (first.status(), first.text().await.unwrap());
    let again = app.signup("GRACE@example.com", "Another7Tortoise").await;
    assert_eq!(again.status(), status);
    assert_eq!(again.text().await.unwrap(), body);
    // The original password still works; the second signup changed nothing.
    assert_eq!(app.login("grace@example.com", PASSWORD).await.status(), 200);
    assert_eq!(app.login("grace@example.com", "Another7Tortoise").await.status(), 401);
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_answer() {
    let app = spawn_app().await;
    app.signup("known@example.com", PASSWORD).await;
    let wrong = app.login("known@example.com", "Wrong1Password").await;
    let unknown = app.login("nobody@example.com", PASSWORD).await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(unknown.status(), 401);
    let wrong: Value = wrong.json().await.unwrap();
    let unknown: Value = unknown.json().await.unwrap();
    assert_eq!(wrong, unknown);
    assert_eq!(wrong["code"], "invalid_credentials");
}

#[tokio::test]
async fn unverified_account_cannot_log_in_when_verification_is_required() {
    let app = spawn_with(Options::default().env("LATCHKEY_REQUIRE_EMAIL_VERIFICATION", "true")).await;
    assert_eq!(app.signup("new@example.com", PASSWORD).await.status(), 202);
    assert_problem(app.login("new@example.com", PASSWORD).await, 403, "email_not_verified").await;
    // A wrong password still gets the generic answer, so 403 proves nothing about the address.
    assert_problem(app.login("new@example.com", "Wrong1Password").await, 401, "invalid_credentials").await;
}

#[tokio::test]
async fn weak_passwords_are_rejected_with_every_rule_named() {
    let app = spawn_app().await;
    let body = assert_problem(app.signup("weak@example.com", "short").await, 422, "invalid_password").await;
    let rules: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["rule"].as_str().unwrap()).collect();
    assert_eq!(rules, ["too_short", "missing_uppercase", "missing_digit"]);
    // Nothing was stored: the address is still free.
    assert_eq!(app.signup("weak@example.com", PASSWORD).await.status(), 202);
    assert_eq!(app.login("weak@example.com", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn unicode_passwords_work() {
    let app = spawn_app().await;
    let password = "Пароль-Ünïcødé-9";
    assert_eq!(app.signup("unicode@example.com", password).await.status(), 202);
    assert_eq!(app.login("unicode@example.com", password).await.status(), 200);
}

#[tokio::test]
async fn logout_ends_the_session() {
    let app = spawn_app().await;
    let tokens = app.new_session().await;
    let access = tokens["access_token"].as_str().unwrap();
    let resp = app.client.post(app.url("/v1/auth/logout")).bearer_auth(access).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_problem(app.refresh(tokens["refresh_token"].as_str().unwrap()).await, 401, "invalid_refresh_token").await;
    assert_problem(app.me(access).await, 401, "invalid_token").await;
}

#[tokio::test]
async fn revoke_ends_the_session_of_a_refresh_token_and_ignores_unknown_ones() {
    let app = spawn_app().await;
    let tokens = app.new_session().await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let resp = app.post("/v1/auth/revoke", serde_json::json!({ "token": refresh })).await;
    assert_eq!(resp.status(), 200);
    assert_problem(app.refresh(refresh).await, 401, "invalid_refresh_token").await;
    let resp = app.post("/v1/auth/revoke", serde_json::json!({ "token": "lk_rt_unknown" })).await;
    assert_eq!(resp.status(), 200);
}
