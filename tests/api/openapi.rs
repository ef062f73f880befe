//! `openapi/openapi.json` is generated from the code. This test fails when it
//! drifts; `UPDATE_OPENAPI=1 cargo nextest run openapi` rewrites it.

use std::path::Path;

use crate::helpers::spawn_app;

#[test]
fn committed_openapi_document_matches_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json");
    let generated = format!("{}\n", latchkey::api::spec_json());
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
        let generated: serde_json::Value = serde_json::from_str(&latchkey::api::spec_json()).unwrap();
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
