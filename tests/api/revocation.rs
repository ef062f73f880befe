//! Revocation through Token Status Lists (README "Revocation"): every access
//! token names its session's slot; every way a session ends sets the bit;
//! the list is a JWT verified through the JWKS alone, as a resource server
//! would verify it.

use std::{collections::HashSet, io::Read, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, Options, PASSWORD, TestApp, assert_problem, burst_with, spawn_with},
    on_both_backends,
};

/// The slot an access token names: its list's URI and its index.
pub fn slot_of(access_token: &str) -> (String, u32) {
    let payload = access_token.split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap();
    let list = &claims["status"]["status_list"];
    (list["uri"].as_str().expect("status.status_list.uri").to_string(), list["idx"].as_u64().expect("idx") as u32)
}

/// A status list fetched and verified as a resource server does it.
pub struct StatusListSeen {
    pub bytes: Vec<u8>,
    pub ttl: u64,
    pub headers: reqwest::header::HeaderMap,
}

impl StatusListSeen {
    pub fn bit(&self, idx: u32) -> u8 {
        (self.bytes[(idx / 8) as usize] >> (idx % 8)) & 1
    }
}

/// Fetches `uri` (from `app`, whatever host the issuer names) and verifies
/// it with the JWKS: signature by the key its `kid` names with that key's
/// algorithm, `typ` `statuslist+jwt`, `sub` = `uri`, `exp` after `iat`.
pub async fn fetch_list(app: &TestApp, uri: &str) -> StatusListSeen {
    let path = &uri[uri.find("/v1/status-lists/").expect("a status-list URI")..];
    let resp = app.client.get(app.url(path)).header("accept", "application/statuslist+jwt").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let headers = resp.headers().clone();
    assert_eq!(headers["content-type"], "application/statuslist+jwt");
    let jwt = resp.text().await.unwrap();
    let header = decode_header(&jwt).unwrap();
    assert_eq!(header.typ.as_deref(), Some("statuslist+jwt"));
    let kid = header.kid.expect("kid");
    let jwks = app.jwks().await;
    let jwk = jwks.find(&kid).expect("signed by a key of the JWKS");
    let mut validation = Validation::new(header.alg);
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["sub", "iat", "exp"]);
    let claims: Value = decode(&jwt, &DecodingKey::from_jwk(jwk).unwrap(), &validation).unwrap().claims;
    assert_eq!(claims["sub"], uri, "sub is the list's own URI");
    assert!(claims["exp"].as_i64() > claims["iat"].as_i64());
    assert_eq!(claims["status_list"]["bits"], 1);
    let lst = B64.decode(claims["status_list"]["lst"].as_str().unwrap()).unwrap();
    let mut bytes = Vec::new();
    flate2::read::ZlibDecoder::new(&lst[..]).read_to_end(&mut bytes).unwrap();
    StatusListSeen { bytes, ttl: claims["ttl"].as_u64().expect("ttl"), headers }
}

/// Waits (up to `within`) until the bit of `access_token`'s slot is `bit`.
pub async fn wait_for_bit(app: &TestApp, access_token: &str, bit: u8, within: Duration) {
    let (uri, idx) = slot_of(access_token);
    let started = std::time::Instant::now();
    loop {
        let seen = fetch_list(app, &uri).await.bit(idx);
        if seen == bit {
            return;
        }
        assert!(started.elapsed() < within, "bit {idx} of {uri} is {seen}, not {bit}, after {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn access(tokens: &Value) -> &str {
    tokens["access_token"].as_str().unwrap()
}

fn refresh(tokens: &Value) -> &str {
    tokens["refresh_token"].as_str().unwrap()
}

/// The bit reaches the list within the server's own refresh (a second).
const PROPAGATION: Duration = Duration::from_secs(5);

#[tokio::test]
async fn every_access_token_of_a_session_names_one_slot_and_sessions_never_share_one() {
    let app = spawn_with(Options::default()).await;
    let first = app.new_session().await;
    let (uri, idx) = slot_of(access(&first));
    assert!(uri.starts_with("http://latchkey.test/v1/status-lists/"), "{uri}");
    let refreshed: Value = app.refresh(refresh(&first)).await.json().await.unwrap();
    assert_eq!(slot_of(access(&refreshed)), (uri.clone(), idx), "the slot belongs to the session");
    let list = fetch_list(&app, &uri).await;
    assert_eq!(list.bit(idx), 0, "a live session's bit is 0");
    assert_eq!(list.bytes.len(), 1 << 17, "allocated at its full size (2^20 slots)");
    assert_eq!(list.ttl, 30);
    let other = app.new_session().await;
    assert_ne!(slot_of(access(&other)), (uri, idx));
}

/// Ends `victim`'s session through every way a session can end, each on a
/// fresh session, and checks that each sets its bit while a bystander's stays.
async fn every_way_a_session_ends_sets_its_bit(backend: Backend) {
    let app = spawn_with(Options::backend(backend)).await;
    let bystander = app.new_session().await;
    let post = |path: &str, token: Option<&str>, body: Value| {
        let mut request = app.client.post(app.url(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token.to_string());
        }
        request.send()
    };
    let mut ended = Vec::new();

    let s = app.new_session().await;
    assert_eq!(post("/v1/auth/logout", Some(access(&s)), json!({})).await.unwrap().status(), 204);
    ended.push(("logout", s));

    let s = app.new_session().await;
    assert_eq!(post("/v1/auth/revoke", None, json!({ "token": refresh(&s) })).await.unwrap().status(), 200);
    ended.push(("revoke", s));

    // Reuse: the successor is used, then the spent token comes back.
    let s = app.new_session().await;
    let next: Value = app.refresh(refresh(&s)).await.json().await.unwrap();
    assert_eq!(app.refresh(refresh(&next)).await.status(), 200);
    assert_problem(app.refresh(refresh(&s)).await, 401, "refresh_token_reused").await;
    ended.push(("reuse", s));

    // One user, several sessions: end one by id, then all others, then change the password.
    let email = format!("many-{}@example.com", uuid::Uuid::new_v4().simple());
    let keep = app.new_session_for(&email).await;
    let by_id: Value = app.login(&email, PASSWORD).await.json().await.unwrap();
    let others: Value = app.login(&email, PASSWORD).await.json().await.unwrap();
    let id = by_id["session_id"].as_str().unwrap();
    let resp = app.client.delete(app.url(&format!("/v1/sessions/{id}"))).bearer_auth(access(&keep)).send().await;
    assert_eq!(resp.unwrap().status(), 204);
    ended.push(("DELETE /v1/sessions/{id}", by_id));
    assert_eq!(post("/v1/sessions/revoke-others", Some(access(&keep)), json!({})).await.unwrap().status(), 200);
    ended.push(("revoke-others", others));
    let changed_away: Value = app.login(&email, PASSWORD).await.json().await.unwrap();
    let change = json!({ "current_password": PASSWORD, "new_password": "Brand9NewSecret" });
    assert_eq!(post("/v1/auth/password/change", Some(access(&keep)), change).await.unwrap().status(), 200);
    ended.push(("password change", changed_away));

    // Account deletion removes the sessions; their bits stay set.
    let gone = app.new_session().await;
    let resp =
        app.client.delete(app.url("/v1/users/me")).bearer_auth(access(&gone)).json(&json!({ "password": PASSWORD }));
    assert_eq!(resp.send().await.unwrap().status(), 204);
    ended.push(("account deletion", gone));

    for (how, tokens) in &ended {
        let (uri, idx) = slot_of(access(tokens));
        let started = std::time::Instant::now();
        while fetch_list(&app, &uri).await.bit(idx) != 1 {
            assert!(started.elapsed() < PROPAGATION, "{how}: the bit was never set");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // The sessions that go on are still valid.
    for tokens in [&bystander, &keep] {
        let (uri, idx) = slot_of(access(tokens));
        assert_eq!(fetch_list(&app, &uri).await.bit(idx), 0);
    }
}
on_both_backends!(every_way_a_session_ends_sets_its_bit);

#[tokio::test]
async fn a_password_reset_sets_the_bits_of_every_session() {
    let app = spawn_with(Options::default().env("LATCHKEY_APP_URL", "http://app.test")).await;
    let email = format!("reset-{}@example.com", uuid::Uuid::new_v4().simple());
    let one = app.new_session_for(&email).await;
    let two: Value = app.login(&email, PASSWORD).await.json().await.unwrap();
    assert_eq!(app.post("/v1/auth/password/forgot", json!({ "email": email })).await.status(), 202);
    let line = app.wait_for_log("reset-password?token=").await;
    let token = line.split("?token=").nth(1).unwrap().split_whitespace().next().unwrap();
    let resp = app.post("/v1/auth/password/reset", json!({ "token": token, "new_password": "Brand9NewSecret" })).await;
    assert_eq!(resp.status(), 200);
    for tokens in [&one, &two] {
        wait_for_bit(&app, access(tokens), 1, PROPAGATION).await;
    }
}

#[tokio::test]
async fn a_revocation_on_one_instance_is_served_by_another() {
    let a = spawn_with(Options::default().env("LATCHKEY_STATUS_LIST_TTL_SECS", 2)).await;
    let b = a.spawn_second().await;
    let tokens = a.new_session().await;
    let (uri, idx) = slot_of(access(&tokens));
    assert_eq!(fetch_list(&b, &uri).await.bit(idx), 0, "B serves a list A started");
    let resp = a.client.post(a.url("/v1/auth/logout")).bearer_auth(access(&tokens)).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    // Within B's refresh (a second), well inside the list's ttl.
    wait_for_bit(&b, access(&tokens), 1, Duration::from_secs(2)).await;
}

/// 40 logins released at once over two instances, on lists of 64 slots
/// (each closed at 32): random picks collide often, and the first list fills
/// up mid-burst, so both the slot's unique key and the start of a new list
/// are raced.
#[tokio::test]
async fn concurrent_logins_on_two_instances_get_distinct_slots() {
    const LOGINS: usize = 40;
    let a = spawn_with(Options::default().env("LATCHKEY_STATUS_LIST_SIZE", 64)).await;
    let b = a.spawn_second().await;
    let emails: Vec<String> =
        (0..LOGINS).map(|i| format!("slot-{i}-{}@example.com", uuid::Uuid::new_v4().simple())).collect();
    for email in &emails {
        assert_eq!(a.signup(email, PASSWORD).await.status(), 202);
    }
    let bases = [a.base.clone(), b.base.clone()];
    let tokens = burst_with(LOGINS, &a.base, move |i, client| {
        let (url, email) = (format!("{}/v1/auth/login", bases[i % 2]), emails[i].clone());
        async move {
            let resp = client.post(url).json(&json!({ "email": email, "password": PASSWORD })).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            let body: Value = resp.json().await.unwrap();
            body["access_token"].as_str().unwrap().to_string()
        }
    })
    .await;
    let slots: HashSet<_> = tokens.iter().map(|t| slot_of(t)).collect();
    assert_eq!(slots.len(), LOGINS, "{LOGINS} sessions, {LOGINS} slots");
    let mut per_list = std::collections::HashMap::<String, usize>::new();
    for (uri, idx) in &slots {
        assert!(*idx < 64, "index {idx} beyond a list of 64");
        *per_list.entry(uri.clone()).or_default() += 1;
    }
    assert!(per_list.len() >= 2, "a full list makes way for a new one: {per_list:?}");
    assert!(per_list.values().all(|&n| n <= 32), "no list takes more than half its slots: {per_list:?}");
    // Every list a token names is served, at its full size, by both instances.
    for uri in per_list.keys() {
        for app in [&a, &b] {
            assert_eq!(fetch_list(app, uri).await.bytes.len(), 8, "64 bits");
        }
    }
}

#[tokio::test]
async fn the_list_is_cacheable_revalidates_and_refuses_what_is_not_a_list() {
    let app = spawn_with(Options::default().env("LATCHKEY_STATUS_LIST_TTL_SECS", 7)).await;
    let tokens = app.new_session().await;
    let (uri, _) = slot_of(access(&tokens));
    let list = fetch_list(&app, &uri).await;
    assert_eq!(list.ttl, 7);
    assert_eq!(list.headers["cache-control"], "public, max-age=7", "no longer than ttl");
    let etag = list.headers["etag"].to_str().unwrap().to_string();
    let path = &uri[uri.find("/v1/").unwrap()..];
    // Readable by a browser app on any origin, like the JWKS.
    let cross = app.client.get(app.url(path)).header("origin", "https://elsewhere.example").send().await.unwrap();
    assert_eq!(cross.headers()["access-control-allow-origin"], "*");
    let again = app.client.get(app.url(path)).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag.as_str());
    let unknown = app.client.get(app.url(&format!("/v1/status-lists/{}", uuid::Uuid::new_v4()))).send().await.unwrap();
    assert_problem(unknown, 404, "status_list_not_found").await;
    for bad in ["not-a-list", "..%2F..%2Fetc", "00000000-0000-0000-0000-00000000000g"] {
        let resp = app.client.get(app.url(&format!("/v1/status-lists/{bad}"))).send().await.unwrap();
        assert!(resp.status().is_client_error(), "{bad}: {}", resp.status());
    }
    // Discovery names the aggregation, which names the list.
    let discovery: Value =
        app.client.get(app.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(discovery["status_list_aggregation_endpoint"], "http://latchkey.test/v1/status-lists");
    let all: Value = app.client.get(app.url("/v1/status-lists")).send().await.unwrap().json().await.unwrap();
    assert_eq!(all["status_lists"], json!([uri]));
}
