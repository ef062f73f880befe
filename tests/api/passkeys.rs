//! Passkeys through the API, without an authenticator (the ceremonies
//! themselves run in Chromium: `browser::passkeys_in_chromium`): every
//! refusal that needs no signature, and ceremonies kept in the database, so
//! one instance finishes (or refuses) what another started.

use serde_json::{Value, json};

use crate::{
    helpers::{Backend, Options, PASSWORD, TestApp, assert_problem, burst_with, count, spawn_with},
    on_both_backends,
};

fn access(tokens: &Value) -> &str {
    tokens["access_token"].as_str().unwrap()
}

async fn post(app: &TestApp, path: &str, tokens: Option<&Value>, body: Value) -> reqwest::Response {
    let mut request = app.client.post(app.url(path)).json(&body);
    if let Some(tokens) = tokens {
        request = request.bearer_auth(access(tokens));
    }
    request.send().await.unwrap()
}

/// What a browser would send, in shape, but signed by nobody.
fn forged_credential() -> Value {
    json!({
        "id": "AAAA", "rawId": "AAAA", "type": "public-key", "clientExtensionResults": {},
        "response": { "clientDataJSON": "e30", "attestationObject": "oA", "authenticatorData": "AA", "signature": "AA", "userHandle": "AA" }
    })
}

async fn ceremonies_live_in_the_database(backend: Backend) {
    let a = spawn_with(Options::backend(backend)).await;
    let b = a.spawn_second().await;
    let tokens = a.new_session().await;

    // Registration: re-authentication first; the state started on A is B's to finish.
    let resp = post(&a, "/v1/users/me/passkeys/register/start", Some(&tokens), json!({})).await;
    assert_problem(resp, 403, "invalid_current_password").await;
    let resp = post(&a, "/v1/users/me/passkeys/register/start", Some(&tokens), json!({ "password": PASSWORD })).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let options: Value = resp.json().await.unwrap();
    let public_key = &options["publicKey"];
    assert_eq!(public_key["rp"]["id"], "latchkey.test", "{options}");
    assert_eq!(public_key["authenticatorSelection"]["residentKey"], "required", "{options}");
    assert_eq!(public_key["authenticatorSelection"]["requireResidentKey"], true, "{options}");
    assert!(public_key["challenge"].as_str().is_some_and(|c| c.len() >= 43), "{options}");
    let finish = |name: &str| json!({ "credential": forged_credential(), "name": name });
    for name in ["", "   ", &"x".repeat(65), "tab\there"] {
        let resp = post(&b, "/v1/users/me/passkeys/register/finish", Some(&tokens), finish(name)).await;
        assert_problem(resp, 400, "invalid_passkey_name").await;
    }
    let resp = post(&b, "/v1/users/me/passkeys/register/finish", Some(&tokens), finish("Laptop")).await;
    assert_problem(resp, 401, "invalid_passkey").await;
    // Used up by that refused answer: a second try must start again.
    let resp = post(&a, "/v1/users/me/passkeys/register/finish", Some(&tokens), finish("Laptop")).await;
    assert_problem(resp, 400, "invalid_passkey_challenge").await;

    // Sign-in: started on A, refused on B for its credential (so B found the
    // challenge), and then gone on both.
    let resp = post(&a, "/v1/auth/passkey/start", None, json!({})).await;
    assert_eq!(resp.status(), 200);
    let started: Value = resp.json().await.unwrap();
    assert!(started["publicKey"]["challenge"].is_string(), "{started}");
    assert!(started["publicKey"].get("allowCredentials").is_none_or(|c| c.as_array().is_some_and(Vec::is_empty)));
    let answer = json!({ "challenge_id": started["challenge_id"], "credential": forged_credential() });
    assert_problem(post(&b, "/v1/auth/passkey/finish", None, answer.clone()).await, 401, "invalid_passkey").await;
    assert_problem(post(&a, "/v1/auth/passkey/finish", None, answer).await, 400, "invalid_passkey_challenge").await;
    let unknown = json!({ "challenge_id": uuid::Uuid::now_v7(), "credential": forged_credential() });
    assert_problem(post(&a, "/v1/auth/passkey/finish", None, unknown).await, 400, "invalid_passkey_challenge").await;
    let malformed = json!({ "challenge_id": "not-a-uuid", "credential": forged_credential() });
    assert_problem(post(&a, "/v1/auth/passkey/finish", None, malformed).await, 400, "malformed_request").await;

    // Nothing was registered.
    let list: Value = a
        .client
        .get(a.url("/v1/users/me/passkeys"))
        .bearer_auth(access(&tokens))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!({ "items": [] }));
    let path = format!("/v1/users/me/passkeys/{}", uuid::Uuid::now_v7());
    let resp = a.client.delete(a.url(&path)).bearer_auth(access(&tokens)).json(&json!({ "password": PASSWORD })).send();
    assert_problem(resp.await.unwrap(), 404, "passkey_not_found").await;
}
on_both_backends!(ceremonies_live_in_the_database);

/// An issuer on an IP address can be no relying party: passkeys are off,
/// said at start-up, and their endpoints answer 404.
#[tokio::test]
async fn without_a_domain_name_passkeys_are_off() {
    let port = crate::smtp::free_port();
    let options = Options::default()
        .env("LATCHKEY_BIND", format!("127.0.0.1:{port}"))
        .env("LATCHKEY_ISSUER", format!("http://127.0.0.1:{port}"));
    let app = spawn_with(options).await;
    app.wait_for_log("passkeys off").await;
    assert_problem(post(&app, "/v1/auth/passkey/start", None, json!({})).await, 404, "passkeys_not_configured").await;
    let tokens = app.new_session().await;
    let resp = post(&app, "/v1/users/me/passkeys/register/start", Some(&tokens), json!({ "password": PASSWORD })).await;
    assert_problem(resp, 404, "passkeys_not_configured").await;
}

/// Each start stores a ceremony: starts count toward the per-IP login
/// limit, and a burst released at once gets exactly that many.
#[tokio::test]
async fn sign_in_starts_count_toward_the_login_limit_per_ip() {
    let app = spawn_with(Options::default().env("LATCHKEY_RATE_LIMIT_LOGIN_PER_IP", "3")).await;
    let base = app.base.clone();
    let statuses = burst_with(10, &app.base, move |_, client| {
        let base = base.clone();
        async move {
            let resp = client.post(format!("{base}/v1/auth/passkey/start")).json(&json!({})).send().await.unwrap();
            resp.status().as_u16()
        }
    })
    .await;
    assert_eq!(count(&statuses, 200), 3, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 7, "{statuses:?}");
}

/// Ten answers to one challenge released at once, over two instances: one
/// takes the ceremony (and is refused for its forged credential), the
/// other nine find it gone.
async fn a_challenge_is_taken_once_by_a_burst(backend: Backend) {
    let a = spawn_with(Options::backend(backend)).await;
    let b = a.spawn_second().await;
    let started: Value = post(&a, "/v1/auth/passkey/start", None, json!({})).await.json().await.unwrap();
    let answer = json!({ "challenge_id": started["challenge_id"], "credential": forged_credential() });
    let bases = [a.base.clone(), b.base.clone()];
    let codes = burst_with(10, &a.base, move |i, client| {
        let (base, answer) = (bases[i % 2].clone(), answer.clone());
        async move {
            let resp = client.post(format!("{base}/v1/auth/passkey/finish")).json(&answer).send().await.unwrap();
            resp.json::<Value>().await.unwrap()["code"].as_str().unwrap_or_default().to_string()
        }
    })
    .await;
    assert_eq!(codes.iter().filter(|c| *c == "invalid_passkey").count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| *c == "invalid_passkey_challenge").count(), 9, "{codes:?}");
}
on_both_backends!(a_challenge_is_taken_once_by_a_burst);
