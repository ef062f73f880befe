//! Refresh-token rotation, the README's "Tokens" rules 1–4.

use std::collections::HashSet;

use serde_json::Value;

use crate::{
    helpers::{Backend, Options, assert_problem, spawn_app, spawn_with, spawn_with_clock},
    on_both_backends,
};

fn rt(tokens: &Value) -> String {
    tokens["refresh_token"].as_str().unwrap().to_string()
}

async fn refresh_rotates_the_token(backend: Backend) {
    let app = spawn_with(Options::backend(backend)).await;
    let first = app.new_session().await;

    let resp = app.refresh(&rt(&first)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let second: Value = resp.json().await.unwrap();
    assert_ne!(rt(&second), rt(&first));
    assert!(rt(&second).starts_with("lk_rt_"));
    assert_eq!(second["session_id"], first["session_id"]);
    assert_ne!(second["access_token"], first["access_token"]);
    assert_eq!(app.me(second["access_token"].as_str().unwrap()).await.status(), 200);

    // The successor rotates in turn.
    let third: Value = app.refresh(&rt(&second)).await.json().await.unwrap();
    assert_ne!(rt(&third), rt(&second));
}
on_both_backends!(refresh_rotates_the_token);

async fn retry_inside_grace_window_returns_the_same_successor(backend: Backend) {
    let app = spawn_with(Options::backend(backend)).await;
    let first = app.new_session().await;
    let a: Value = app.refresh(&rt(&first)).await.json().await.unwrap();
    let resp = app.refresh(&rt(&first)).await;
    assert_eq!(resp.status(), 200);
    let b: Value = resp.json().await.unwrap();
    assert_eq!(rt(&a), rt(&b), "a retry must not mint a second live token");
    // And that one successor still works (once).
    assert_eq!(app.refresh(&rt(&a)).await.status(), 200);
}
on_both_backends!(retry_inside_grace_window_returns_the_same_successor);

async fn reuse_after_grace_window_revokes_the_session(backend: Backend) {
    let app = spawn_with_clock(Options::backend(backend).env("LATCHKEY_REFRESH_GRACE_SECS", 1)).await;
    let first = app.new_session().await;
    let successor: Value = app.refresh(&rt(&first)).await.json().await.unwrap();

    app.advance(chrono::Duration::seconds(2));
    assert_problem(app.refresh(&rt(&first)).await, 401, "refresh_token_reused").await;

    // The whole family is dead: the successor and the session's access token.
    assert_problem(app.refresh(&rt(&successor)).await, 401, "invalid_refresh_token").await;
    assert_problem(app.me(successor["access_token"].as_str().unwrap()).await, 401, "invalid_token").await;
}
on_both_backends!(reuse_after_grace_window_revokes_the_session);

#[tokio::test]
async fn reuse_after_the_successor_was_used_revokes_even_inside_the_window() {
    let app = spawn_app().await;
    let first = app.new_session().await;
    let second: Value = app.refresh(&rt(&first)).await.json().await.unwrap();
    let third: Value = app.refresh(&rt(&second)).await.json().await.unwrap();

    assert_problem(app.refresh(&rt(&first)).await, 401, "refresh_token_reused").await;
    assert_problem(app.refresh(&rt(&third)).await, 401, "invalid_refresh_token").await;
}

async fn fifty_concurrent_refreshes_yield_exactly_one_successor(backend: Backend) {
    let app = spawn_with(Options::backend(backend)).await;
    let first = app.new_session().await;
    let token = rt(&first);

    let responses = futures::future::join_all((0..50).map(|_| app.refresh(&token))).await;
    let mut successors = HashSet::new();
    for resp in responses {
        assert_eq!(resp.status(), 200, "every racing request is a retry inside the window");
        successors.insert(rt(&resp.json::<Value>().await.unwrap()));
    }
    assert_eq!(successors.len(), 1, "one live successor, whoever won");
    if backend == Backend::Postgres {
        let live = app.sql("SELECT count(*) FROM refresh_tokens WHERE used_at IS NULL");
        assert_eq!(live, "1", "exactly one unused token in the family");
    }
    let successor = successors.into_iter().next().unwrap();
    assert_eq!(app.refresh(&successor).await.status(), 200);
}
on_both_backends!(fifty_concurrent_refreshes_yield_exactly_one_successor);

#[tokio::test]
async fn rotation_is_atomic_across_two_instances() {
    let one = spawn_app().await;
    let two = one.spawn_second().await;
    let first = one.new_session().await;
    let token = rt(&first);

    let racing = (0..20).map(|i| if i % 2 == 0 { one.refresh(&token) } else { two.refresh(&token) });
    let mut successors = HashSet::new();
    for resp in futures::future::join_all(racing).await {
        assert_eq!(resp.status(), 200);
        successors.insert(rt(&resp.json::<Value>().await.unwrap()));
    }
    assert_eq!(successors.len(), 1);
}

#[tokio::test]
async fn sessions_end_at_their_absolute_cap() {
    let app = spawn_with_clock(Options::default().env("LATCHKEY_SESSION_MAX_AGE_SECS", 3)).await;
    let first = app.new_session().await;
    assert!(first["refresh_expires_in"].as_u64().unwrap() <= 3, "capped by the session: {first}");
    app.advance(chrono::Duration::seconds(2));
    let second: Value = app.refresh(&rt(&first)).await.json().await.unwrap();
    assert!(second["refresh_expires_in"].as_u64().unwrap() <= 1, "the cap does not slide: {second}");

    app.advance(chrono::Duration::seconds(2));
    assert_problem(app.refresh(&rt(&second)).await, 401, "invalid_refresh_token").await;
}

#[tokio::test]
async fn refresh_expiry_slides_with_each_rotation() {
    let app = spawn_with_clock(Options::default().env("LATCHKEY_REFRESH_TOKEN_TTL_SECS", 5)).await;
    let mut tokens = app.new_session().await;
    // Three rotations spread over 12 s: well past the first token's 5 s life.
    for _ in 0..3 {
        app.advance(chrono::Duration::seconds(4));
        let resp = app.refresh(&rt(&tokens)).await;
        assert_eq!(resp.status(), 200);
        tokens = resp.json().await.unwrap();
        assert!(tokens["refresh_expires_in"].as_u64().unwrap() >= 4);
    }
    // Without a rotation for longer than its life, the last one expires.
    app.advance(chrono::Duration::seconds(6));
    assert_problem(app.refresh(&rt(&tokens)).await, 401, "invalid_refresh_token").await;
}

#[tokio::test]
async fn unknown_and_malformed_refresh_tokens_are_rejected() {
    let app = spawn_app().await;
    for token in ["lk_rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "lk_rt_", "nonsense", ""] {
        assert_problem(app.refresh(token).await, 401, "invalid_refresh_token").await;
    }
}
