//! Access tokens as a downstream service sees them: verified with nothing but
//! the JWKS fetched over HTTP, and forged ones refused.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, TokenData, Validation, decode, decode_header, encode, jwk::JwkSet,
};
use serde_json::{Value, json};

use crate::helpers::{Options, TestApp, assert_problem, spawn_app, spawn_with};

const ISSUER: &str = "http://latchkey.test";

/// What any resource server does: key by `kid`, algorithm from the key.
pub fn verify_with_jwks(token: &str, jwks: &JwkSet) -> TokenData<Value> {
    let header = decode_header(token).expect("header");
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let jwk = jwks.find(header.kid.as_deref().expect("kid")).expect("kid is published");
    let alg: Algorithm =
        serde_json::from_value(serde_json::to_value(jwk.common.key_algorithm.expect("alg")).unwrap()).unwrap();
    assert_eq!(header.alg, alg);
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&["latchkey"]);
    decode::<Value>(token, &DecodingKey::from_jwk(jwk).expect("usable jwk"), &validation).expect("verifies")
}

async fn verifies_through_jwks(alg: &str) {
    let app = spawn_with(Options::default().env("LATCHKEY_SIGNING_ALG", alg)).await;
    let tokens = app.new_session().await;
    let access = tokens["access_token"].as_str().unwrap();
    let me: Value = app.me(access).await.json().await.unwrap();

    let jwks = app.jwks().await;
    let data = verify_with_jwks(access, &jwks);
    assert_eq!(format!("{:?}", data.header.alg), alg);
    let claims = data.claims;
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], "latchkey");
    assert_eq!(claims["sub"], me["id"]);
    assert_eq!(claims["sid"], tokens["session_id"]);
    assert_eq!(claims["email"], me["email"]);
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["client_id"], "latchkey");
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 900);
    assert_eq!(claims["nbf"], claims["iat"]);
    assert!(uuid::Uuid::parse_str(claims["jti"].as_str().unwrap()).is_ok());
    // Public parts only.
    let raw: Value = app.client.get(app.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    for key in raw["keys"].as_array().unwrap() {
        assert_eq!(key["use"], "sig");
        assert_eq!(key["alg"], alg);
        assert!(key.get("d").is_none() && key.get("p").is_none(), "private material in {key}");
    }
}

#[tokio::test]
async fn es256_access_token_verifies_through_jwks_alone() {
    verifies_through_jwks("ES256").await;
}

#[tokio::test]
async fn eddsa_access_token_verifies_through_jwks_alone() {
    verifies_through_jwks("EdDSA").await;
}

#[tokio::test]
async fn rs256_access_token_verifies_through_jwks_alone() {
    verifies_through_jwks("RS256").await;
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Signs `claims` with the server's own active key, under `header`.
pub fn sign_with_server_key(app: &TestApp, header: &Header, claims: &Value) -> String {
    let pem = app.private_key_pem(header.kid.as_deref().unwrap());
    encode(header, claims, &EncodingKey::from_ec_pem(&pem).unwrap()).unwrap()
}

pub fn b64(value: &Value) -> String {
    B64.encode(serde_json::to_vec(value).unwrap())
}

#[tokio::test]
async fn users_me_rejects_forged_and_invalid_tokens() {
    let app = spawn_app().await;
    let tokens = app.new_session().await;
    let genuine = tokens["access_token"].as_str().unwrap().to_string();
    let header = decode_header(&genuine).unwrap();
    let claims: Value = serde_json::from_slice(&B64.decode(genuine.split('.').nth(1).unwrap()).unwrap()).unwrap();
    let with = |patch: Value| {
        let mut c = claims.clone();
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };

    // Control: a token we sign the same way with valid claims is accepted,
    // so each rejection below is down to the one thing that differs.
    let control = sign_with_server_key(&app, &header, &with(json!({ "jti": uuid::Uuid::new_v4() })));
    assert_eq!(app.me(&control).await.status(), 200, "control token");

    let [h, _, s]: [&str; 3] = genuine.split('.').collect::<Vec<_>>().try_into().unwrap();
    let mut wrong_typ = header.clone();
    wrong_typ.typ = Some("JWT".into());
    let public_key = app.jwks().await.keys[0].clone();
    let mut hs256 = Header::new(Algorithm::HS256);
    hs256.typ = Some("at+jwt".into());
    hs256.kid = header.kid.clone();

    let cases: Vec<(&str, String)> = vec![
        ("tampered payload", format!("{h}.{}.{s}", b64(&with(json!({ "sub": uuid::Uuid::new_v4() }))))),
        (
            "expired",
            sign_with_server_key(
                &app,
                &header,
                &with(json!({ "iat": now() - 1000, "nbf": now() - 1000, "exp": now() - 120 })),
            ),
        ),
        (
            "not yet valid",
            sign_with_server_key(&app, &header, &with(json!({ "nbf": now() + 600, "exp": now() + 1200 }))),
        ),
        ("wrong aud", sign_with_server_key(&app, &header, &with(json!({ "aud": "someone-else" })))),
        ("wrong iss", sign_with_server_key(&app, &header, &with(json!({ "iss": "https://evil.example" })))),
        ("wrong typ", sign_with_server_key(&app, &wrong_typ, &claims)),
        (
            "alg none",
            format!("{}.{}.", b64(&json!({ "alg": "none", "typ": "at+jwt", "kid": header.kid })), b64(&claims)),
        ),
        (
            "HS256 keyed with the public key",
            encode(&hs256, &claims, &EncodingKey::from_secret(serde_json::to_string(&public_key).unwrap().as_bytes()))
                .unwrap(),
        ),
        ("unknown kid", {
            let mut other = header.clone();
            other.kid = Some("no-such-key".into());
            format!("{}.{}.{s}", b64(&serde_json::to_value(&other).unwrap()), genuine.split('.').nth(1).unwrap())
        }),
        ("garbage", "not.a.jwt".into()),
    ];
    for (name, token) in cases {
        let resp = app.me(&token).await;
        assert_eq!(resp.status(), 401, "{name} was accepted");
        assert_eq!(resp.headers()["www-authenticate"], r#"Bearer error="invalid_token""#, "{name}");
        assert_problem(resp, 401, "invalid_token").await;
    }
}

#[tokio::test]
async fn missing_or_malformed_authorization_header_is_a_401_problem() {
    let app = spawn_app().await;
    let resp = app.client.get(app.url("/v1/users/me")).send().await.unwrap();
    assert!(resp.headers().contains_key("www-authenticate"));
    assert_problem(resp, 401, "invalid_token").await;
    for value in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "garbage", "Bearer a.b", "Bearer \u{1}"] {
        let resp = app.client.get(app.url("/v1/users/me")).header("authorization", value).send().await;
        let Ok(resp) = resp else { continue }; // the client refuses some header values itself
        assert_problem(resp, 401, "invalid_token").await;
    }
}

#[tokio::test]
async fn a_token_accepted_before_is_refused_once_it_expires() {
    let app = crate::helpers::spawn_with_clock(
        Options::default().env("LATCHKEY_ACCESS_TOKEN_TTL_SECS", 60).env("LATCHKEY_CLOCK_LEEWAY_SECS", 5),
    )
    .await;
    let tokens = app.new_session().await;
    let access = tokens["access_token"].as_str().unwrap();
    // Accepted (and remembered as verified), also inside the leeway…
    assert_eq!(app.me(access).await.status(), 200);
    app.advance(chrono::Duration::seconds(64));
    assert_eq!(app.me(access).await.status(), 200);
    app.advance(chrono::Duration::seconds(1));
    // …but the expiry is checked again on every use.
    assert_problem(app.me(access).await, 401, "invalid_token").await;
}
