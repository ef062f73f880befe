use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn jwks_is_cacheable_and_answers_if_none_match_with_304() {
    let app = spawn_app().await;
    let resp = app.client.get(app.url("/.well-known/jwks.json")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert!(resp.headers()["cache-control"].to_str().unwrap().contains("max-age="));
    let etag = resp.headers()["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'));

    let resp = app.client.get(app.url("/.well-known/jwks.json")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(resp.status(), 304);
    assert_eq!(resp.headers()["etag"], etag.as_str());
    assert!(resp.text().await.unwrap().is_empty());

    let resp =
        app.client.get(app.url("/.well-known/jwks.json")).header("if-none-match", "\"stale\"").send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn openid_configuration_points_at_the_jwks_and_endpoints() {
    let app = spawn_app().await;
    let doc: Value =
        app.client.get(app.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["issuer"], "http://latchkey.test");
    assert_eq!(doc["jwks_uri"], "http://latchkey.test/.well-known/jwks.json");
    assert_eq!(doc["token_endpoint"], "http://latchkey.test/v1/auth/refresh");
    assert_eq!(doc["revocation_endpoint"], "http://latchkey.test/v1/auth/revoke");
    assert_eq!(doc["id_token_signing_alg_values_supported"], serde_json::json!(["ES256"]));
}
