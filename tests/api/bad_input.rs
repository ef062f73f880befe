//! Bad input gets a 4xx problem+json, never a 500, and changes nothing.

use serde_json::json;

use crate::helpers::{PASSWORD, assert_problem, spawn_app};

async fn raw(
    app: &crate::helpers::TestApp,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    app.client.post(app.url(path)).header("content-type", content_type).body(body).send().await.unwrap()
}

#[tokio::test]
async fn malformed_bodies_are_400_problems_on_every_endpoint() {
    let app = spawn_app().await;
    let paths = ["/v1/auth/signup", "/v1/auth/login", "/v1/auth/refresh", "/v1/auth/revoke", "/v1/auth/oauth/exchange"];
    for path in paths {
        for body in [
            "{",
            "not json",
            "[]",
            "null",
            "{}",
            "{\"email\": [\"a\"], \"password\": {}, \"token\": [], \"refresh_token\": {}, \"code\": []}",
        ] {
            if path == "/v1/auth/refresh" && body == "{}" {
                continue; // cookie mode: the token may come in the cookie instead
            }
            let resp = raw(&app, path, "application/json", body).await;
            assert_problem(resp, 400, "malformed_request").await;
        }
    }
    // No token in the body and no cookie: nothing to refresh.
    assert_problem(raw(&app, "/v1/auth/refresh", "application/json", "{}").await, 401, "invalid_refresh_token").await;
}

#[tokio::test]
async fn scalars_of_the_wrong_type_are_a_4xx_problem_too() {
    // poem-openapi reads a JSON number or boolean where a string is expected
    // as its text; the value then fails validation like any other bad value.
    let app = spawn_app().await;
    let resp = raw(&app, "/v1/auth/signup", "application/json", r#"{"email": 5, "password": true}"#).await;
    assert_problem(resp, 422, "invalid_email").await;
    let resp = raw(&app, "/v1/auth/login", "application/json", r#"{"email": 5, "password": true}"#).await;
    assert_problem(resp, 401, "invalid_credentials").await;
}

#[tokio::test]
async fn wrong_content_type_is_a_415_problem() {
    let app = spawn_app().await;
    let resp = raw(&app, "/v1/auth/login", "text/plain", "email=a").await;
    assert_problem(resp, 415, "unsupported_media_type").await;
}

#[tokio::test]
async fn oversized_bodies_are_413_problems_with_or_without_a_length() {
    let app = spawn_app().await;
    let big = format!("{{\"email\":\"a@example.com\",\"password\":\"{}\"}}", "A".repeat(64 * 1024));
    assert_problem(raw(&app, "/v1/auth/signup", "application/json", big.clone()).await, 413, "payload_too_large").await;

    let chunks = futures::stream::iter(vec![Ok::<_, std::io::Error>(big.into_bytes())]);
    let resp = app
        .client
        .post(app.url("/v1/auth/signup"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 413, "payload_too_large").await;
}

#[tokio::test]
async fn invalid_emails_are_422_with_the_rule_named() {
    let app = spawn_app().await;
    let long = format!("{}@example.com", "a".repeat(300));
    for (email, rule) in [
        ("plainaddress", "format"),
        ("two@@example.com", "format"),
        ("a@localhost", "format"),
        ("ctrl\u{7}@example.com", "invalid_characters"),
        ("new\nline@example.com", "invalid_characters"),
        ("", "format"),
        (long.as_str(), "too_long"),
    ] {
        let body = assert_problem(app.signup(email, PASSWORD).await, 422, "invalid_email").await;
        assert_eq!(body["errors"][0]["field"], "email");
        assert_eq!(body["errors"][0]["rule"], rule, "{email:?}");
    }
}

#[tokio::test]
async fn absurd_passwords_and_names_are_422() {
    let app = spawn_app().await;
    let huge = format!("Aa1{}", "x".repeat(10 * 1024));
    let body = assert_problem(app.signup("long@example.com", &huge).await, 422, "invalid_password").await;
    assert_eq!(body["errors"][0]["rule"], "too_long");
    let body =
        assert_problem(app.signup("ctrl@example.com", "Correct1\u{0}Horse").await, 422, "invalid_password").await;
    assert!(body["errors"].as_array().unwrap().iter().any(|e| e["rule"] == "invalid_characters"));

    let resp = app
        .post("/v1/auth/signup", json!({ "email": "n@example.com", "password": PASSWORD, "name": "x".repeat(101) }))
        .await;
    assert_problem(resp, 422, "invalid_name").await;
    let resp = app
        .post("/v1/auth/signup", json!({ "email": "n@example.com", "password": PASSWORD, "name": "bell\u{7}" }))
        .await;
    assert_problem(resp, 422, "invalid_name").await;
    // None of that created the account.
    assert_problem(app.login("n@example.com", PASSWORD).await, 401, "invalid_credentials").await;
}

#[tokio::test]
async fn login_with_absurd_input_is_a_plain_401() {
    let app = spawn_app().await;
    let huge = "B1b".repeat(3000);
    for (email, password) in [("not-an-email", PASSWORD), ("a@example.com", huge.as_str()), ("\u{0}", "\u{0}")] {
        assert_problem(app.login(email, password).await, 401, "invalid_credentials").await;
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = spawn_app().await;
    assert_problem(app.client.get(app.url("/nope")).send().await.unwrap(), 404, "not_found").await;
    let resp = app.client.delete(app.url("/v1/auth/login")).send().await.unwrap();
    assert_problem(resp, 405, "method_not_allowed").await;
}
