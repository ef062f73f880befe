//! `openapi/openapi.json` is generated from the code. This test fails when it
//! drifts; `UPDATE_OPENAPI=1 cargo nextest run openapi` rewrites it.

use std::path::Path;

use crate::helpers::spawn_app;

#[test]
fn committed_openapi_document_matches_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json");
    let generated = format!("{}\n", latchkey::spec_json());
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if generated == committed {
        return;
    }
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    panic!("{} is out of date: run `UPDATE_OPENAPI=1 cargo nextest run openapi` and commit it", path.display());
}

#[tokio::test]
async fn the_server_publishes_the_same_document_and_swagger_ui() {
    let app = spawn_app().await;
    // Both are built by their first request; the second gets the same bytes.
    for _ in 0..2 {
        let spec = app.client.get(app.url("/openapi.json")).send().await.unwrap();
        assert_eq!(spec.status(), 200);
        assert_eq!(spec.headers()["content-type"], "application/json");
        let served: serde_json::Value = spec.json().await.unwrap();
        let generated: serde_json::Value = serde_json::from_str(&latchkey::spec_json()).unwrap();
        assert_eq!(served, generated);
        for path in ["/docs", "/docs/"] {
            let docs = app.client.get(app.url(path)).send().await.unwrap();
            assert_eq!(docs.status(), 200, "{path}");
            assert_eq!(docs.headers()["content-type"], "text/html; charset=utf-8", "{path}");
            let page = docs.text().await.unwrap();
            assert!(
                page.contains("SwaggerUIBundle") && page.contains("/v1/users/me"),
                "{path}: Swagger UI with the document inlined"
            );
        }
    }
}

#[test]
fn the_document_states_the_rules_the_server_enforces() {
    let spec: serde_json::Value = serde_json::from_str(&latchkey::spec_json()).unwrap();
    // Every operation with a body documents the answer to a body that is not JSON.
    let mut with_body = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if operation.get("requestBody").is_some() {
                with_body += 1;
                assert!(operation["responses"].get("415").is_some(), "{method} {path} does not document 415");
            }
        }
    }
    assert!(with_body >= 11, "{with_body} operations with a body");
    let schemas = &spec["components"]["schemas"];
    let field = |schema: &str, name: &str| schemas[schema]["properties"][name].clone();
    let signup_email = field("SignupRequest", "email");
    assert_eq!((signup_email["format"].as_str(), signup_email["maxLength"].as_u64()), (Some("email"), Some(254)));
    let password = field("SignupRequest", "password");
    assert_eq!((password["minLength"].as_u64(), password["maxLength"].as_u64()), (Some(8), Some(128)));
    assert_eq!(field("SignupRequest", "name")["maxLength"], 100);
    assert_eq!(field("ProfileRequest", "learning_goals")["maxLength"], 2000);
    assert_eq!(field("ResetPasswordRequest", "new_password")["minLength"], 8);
    assert_eq!(field("RefreshRequest", "refresh_token")["pattern"], "^lk_rt_[A-Za-z0-9_-]{43}$");
    // A password being checked has no rule that would tell what is stored.
    assert!(field("LoginRequest", "password").get("minLength").is_none());
}
