//! The signed-in user's own account: sessions, onboarding profile, deletion
//! and the security log.

use serde_json::{Value, json};

use crate::{
    helpers::{Backend, Options, PASSWORD, TestApp, assert_problem, spawn_with},
    on_both_backends,
};

fn address() -> String {
    format!("user-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// Logs `email` in from a client calling itself `agent`.
async fn login_as(app: &TestApp, email: &str, agent: &str) -> Value {
    let resp = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("user-agent", agent)
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

fn access(tokens: &Value) -> &str {
    tokens["access_token"].as_str().unwrap()
}

fn refresh_token(tokens: &Value) -> &str {
    tokens["refresh_token"].as_str().unwrap()
}

async fn get(app: &TestApp, path: &str, tokens: &Value) -> reqwest::Response {
    app.client.get(app.url(path)).bearer_auth(access(tokens)).send().await.unwrap()
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    tokens: &Value,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(access(tokens));
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

async fn sessions_are_listed_and_revoked(backend: Backend) {
    let app = spawn_with(Options::backend(backend)).await;
    let email = address();
    assert_eq!(app.signup(&email, PASSWORD).await.status(), 202);
    let laptop = login_as(&app, &email, "laptop-browser").await;
    let phone = login_as(&app, &email, "phone-app").await;
    let stranger = app.new_session().await;

    let list: Value = get(&app, "/v1/sessions", &laptop).await.json().await.unwrap();
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "only the caller's own sessions: {list}");
    let (newest, oldest) = (&sessions[0], &sessions[1]);
    assert_eq!(newest["id"], phone["session_id"]);
    assert_eq!(newest["user_agent"], "phone-app");
    assert_eq!(newest["current"], false);
    assert_eq!(oldest["id"], laptop["session_id"]);
    assert_eq!(oldest["user_agent"], "laptop-browser");
    assert_eq!(oldest["current"], true);
    assert_eq!(oldest["method"], "pwd");
    assert_eq!(oldest["ip"], "127.0.0.1");
    assert!(oldest["created_at"].is_string() && oldest["last_refreshed_at"].is_string());

    // From the phone, end the laptop's session: its next refresh fails.
    let laptop_id = laptop["session_id"].as_str().unwrap();
    let resp = send(&app, reqwest::Method::DELETE, &format!("/v1/sessions/{laptop_id}"), &phone, None).await;
    assert_eq!(resp.status(), 204);
    assert_problem(app.refresh(refresh_token(&laptop)).await, 401, "invalid_refresh_token").await;
    assert_problem(app.me(access(&laptop)).await, 401, "invalid_token").await;
    // Again, or someone else's, or none at all: 404, the same for each.
    let strangers = stranger["session_id"].as_str().unwrap();
    for id in [laptop_id, strangers, &uuid::Uuid::new_v4().to_string()] {
        let resp = send(&app, reqwest::Method::DELETE, &format!("/v1/sessions/{id}"), &phone, None).await;
        assert_problem(resp, 404, "session_not_found").await;
    }
    assert_eq!(app.refresh(refresh_token(&stranger)).await.status(), 200, "the stranger's session is untouched");
    let resp = send(&app, reqwest::Method::DELETE, "/v1/sessions/not-a-uuid", &phone, None).await;
    assert_problem(resp, 400, "malformed_request").await;

    // End all the others.
    let tablet = login_as(&app, &email, "tablet").await;
    let desktop = login_as(&app, &email, "desktop").await;
    let resp = send(&app, reqwest::Method::POST, "/v1/sessions/revoke-others", &phone, None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["revoked"], 2);
    for gone in [&tablet, &desktop] {
        assert_problem(app.refresh(refresh_token(gone)).await, 401, "invalid_refresh_token").await;
    }
    let list: Value = get(&app, "/v1/sessions", &phone).await.json().await.unwrap();
    assert_eq!(list["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(app.refresh(refresh_token(&phone)).await.status(), 200);
}
on_both_backends!(sessions_are_listed_and_revoked);

#[tokio::test]
async fn a_session_revoked_on_one_instance_cannot_refresh_on_another() {
    let first = spawn_with(Options::default()).await;
    let second = first.spawn_second().await;
    let email = address();
    assert_eq!(first.signup(&email, PASSWORD).await.status(), 202);
    let victim = login_as(&first, &email, "a").await;
    let owner = login_as(&first, &email, "b").await;
    let id = victim["session_id"].as_str().unwrap();
    assert_eq!(send(&first, reqwest::Method::DELETE, &format!("/v1/sessions/{id}"), &owner, None).await.status(), 204);
    assert_problem(second.refresh(refresh_token(&victim)).await, 401, "invalid_refresh_token").await;
}

async fn the_onboarding_profile(backend: Backend) {
    let app = spawn_with(Options::backend(backend)).await;
    let email = address();
    assert_eq!(app.signup(&email, PASSWORD).await.status(), 202);
    let tokens = login_as(&app, &email, "t").await;
    assert_eq!(tokens["onboarding_required"], true);
    let refreshed: Value = app.refresh(refresh_token(&tokens)).await.json().await.unwrap();
    assert!(refreshed.get("onboarding_required").is_none(), "only logins say it: {refreshed}");
    let tokens = refreshed;

    assert_problem(get(&app, "/v1/users/me/profile", &tokens).await, 404, "profile_not_found").await;
    let put = |body: Value| send(&app, reqwest::Method::PUT, "/v1/users/me/profile", &tokens, Some(body));
    let valid = json!({ "robotics_experience": "beginner", "ai_ml_experience": "advanced", "learning_goals": "x" });

    let mut wrong_enum = valid.clone();
    wrong_enum["robotics_experience"] = json!("expert");
    assert_problem(put(wrong_enum).await, 400, "malformed_request").await;
    let mut control = valid.clone();
    control["learning_goals"] = json!("ring the bell\u{7}");
    let body = assert_problem(put(control).await, 422, "invalid_profile").await;
    assert_eq!(body["errors"][0]["field"], "learning_goals");
    assert_eq!(body["errors"][0]["rule"], "invalid_characters");
    let mut long = valid.clone();
    long["learning_goals"] = json!("é".repeat(2001));
    let body = assert_problem(put(long).await, 422, "invalid_profile").await;
    assert_eq!(body["errors"][0]["rule"], "too_long");
    assert_problem(get(&app, "/v1/users/me/profile", &tokens).await, 404, "profile_not_found").await;

    let mut marked_up = valid.clone();
    marked_up["learning_goals"] = json!("<p>Build a <b>robot</b> arm</p><script>alert(1)</script>\nthen SLAM & ROS 2");
    let resp = put(marked_up).await;
    assert_eq!(resp.status(), 200);
    let saved: Value = resp.json().await.unwrap();
    assert_eq!(saved["learning_goals"], "Build a robot arm\nthen SLAM & ROS 2");
    assert_eq!(saved["robotics_experience"], "beginner");
    assert_eq!(saved["ai_ml_experience"], "advanced");
    let fetched: Value = get(&app, "/v1/users/me/profile", &tokens).await.json().await.unwrap();
    assert_eq!(fetched, saved);

    let mut changed = valid.clone();
    changed["robotics_experience"] = json!("intermediate");
    let updated: Value = put(changed).await.json().await.unwrap();
    assert_eq!(updated["robotics_experience"], "intermediate");
    assert_eq!(updated["learning_goals"], "x");
    assert_eq!(updated["created_at"], saved["created_at"]);
    assert_eq!(login_as(&app, &email, "t").await["onboarding_required"], false);
}
on_both_backends!(the_onboarding_profile);

async fn deleting_the_account(backend: Backend) {
    let app = spawn_with(Options::backend(backend)).await;
    let email = address();
    assert_eq!(app.signup(&email, PASSWORD).await.status(), 202);
    let one = login_as(&app, &email, "one").await;
    let two = login_as(&app, &email, "two").await;
    let profile = json!({ "robotics_experience": "none", "ai_ml_experience": "none", "learning_goals": "" });
    assert_eq!(send(&app, reqwest::Method::PUT, "/v1/users/me/profile", &one, Some(profile)).await.status(), 200);
    let user_id = app.me(access(&one)).await.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();

    let delete = |body: Value| send(&app, reqwest::Method::DELETE, "/v1/users/me", &one, Some(body));
    assert_problem(delete(json!({ "password": "Wrong1Password" })).await, 403, "invalid_current_password").await;
    assert_problem(delete(json!({})).await, 403, "invalid_current_password").await;
    assert_eq!(app.refresh(refresh_token(&two)).await.status(), 200, "nothing was deleted");

    assert_eq!(delete(json!({ "password": PASSWORD })).await.status(), 204);
    assert_problem(app.refresh(refresh_token(&one)).await, 401, "invalid_refresh_token").await;
    assert_problem(app.me(access(&one)).await, 401, "invalid_token").await;
    assert_problem(app.login(&email, PASSWORD).await, 401, "invalid_credentials").await;
    if backend == Backend::Postgres {
        let left = format!(
            "SELECT (SELECT count(*) FROM users WHERE id = '{user_id}') \
             + (SELECT count(*) FROM sessions WHERE user_id = '{user_id}') \
             + (SELECT count(*) FROM refresh_tokens) + (SELECT count(*) FROM profiles)"
        );
        assert_eq!(app.sql(&left), "0");
        let events = format!("SELECT string_agg(kind, ',') FROM security_events WHERE user_id = '{user_id}'");
        assert_eq!(app.sql(&events), "account_deleted", "only the audit record stays");
    }
    // The address is free again.
    assert_eq!(app.signup(&email, "Second1Account").await.status(), 202);
    assert_eq!(app.login(&email, "Second1Account").await.status(), 200);
}
on_both_backends!(deleting_the_account);

#[tokio::test]
async fn a_deletion_that_fails_half_way_deletes_nothing() {
    let app = spawn_with(Options::default()).await;
    let email = address();
    assert_eq!(app.signup(&email, PASSWORD).await.status(), 202);
    let tokens = login_as(&app, &email, "t").await;
    // Make the last step of the deletion (its audit record) fail.
    app.sql(
        "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql; \
         CREATE TRIGGER refuse_deletion BEFORE INSERT ON security_events FOR EACH ROW \
         WHEN (NEW.kind = 'account_deleted') EXECUTE FUNCTION refuse();",
    );
    let resp =
        send(&app, reqwest::Method::DELETE, "/v1/users/me", &tokens, Some(json!({ "password": PASSWORD }))).await;
    assert_problem(resp, 500, "internal_error").await;
    assert_eq!(app.refresh(refresh_token(&tokens)).await.status(), 200, "the session survived");
    assert_eq!(app.login(&email, PASSWORD).await.status(), 200, "the account survived");
    assert_ne!(app.sql("SELECT count(*) FROM security_events WHERE kind = 'signup'"), "0", "so did its events");
}

async fn the_security_log(backend: Backend) {
    let app = spawn_with(Options::backend(backend)).await;
    let email = address();
    assert_eq!(app.signup(&email, PASSWORD).await.status(), 202);
    assert_eq!(app.login(&email, "Wrong1Password").await.status(), 401);
    let first = login_as(&app, &email, "first-agent").await;
    let tokens = login_as(&app, &email, "second-agent").await;
    let resp = app.client.post(app.url("/v1/auth/logout")).bearer_auth(access(&first)).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    let _other = app.new_session().await; // another user's events never show

    let page: Value = get(&app, "/v1/users/me/events", &tokens).await.json().await.unwrap();
    let kinds: Vec<&str> = page["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["logout", "login", "login", "login_failed", "signup"]);
    assert!(page.get("next_before").is_none());
    let latest_login = &page["events"][1];
    assert_eq!(latest_login["user_agent"], "second-agent");
    assert_eq!(latest_login["ip"], "127.0.0.1");
    assert_eq!(latest_login["session_id"], tokens["session_id"]);
    let text = page.to_string();
    assert!(!text.contains(PASSWORD) && !text.contains("Wrong1Password") && !text.contains(refresh_token(&tokens)));

    // Two at a time.
    let page: Value = get(&app, "/v1/users/me/events?limit=2", &tokens).await.json().await.unwrap();
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    let before = page["next_before"].as_str().expect("a next page");
    let next: Value =
        get(&app, &format!("/v1/users/me/events?limit=2&before={before}"), &tokens).await.json().await.unwrap();
    let kinds: Vec<&str> = next["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["login", "login_failed"]);
    for bad in ["limit=0", "limit=101", "limit=x", "before=nope"] {
        assert_problem(get(&app, &format!("/v1/users/me/events?{bad}"), &tokens).await, 400, "malformed_request").await;
    }
}
on_both_backends!(the_security_log);
