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
    let served: serde_json::Value =
        app.client.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let generated: serde_json::Value = serde_json::from_str(&latchkey::api::spec_json()).unwrap();
    assert_eq!(served, generated);
    let docs = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger"));
}
