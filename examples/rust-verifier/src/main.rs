//! A service that protects `GET /protected` with latchkey access tokens,
//! configured with nothing but the issuer URL and the audience:
//!
//! ```sh
//! ISSUER=http://127.0.0.1:8080 AUDIENCE=latchkey PORT=8081 cargo run -p rust-verifier
//! curl -H "authorization: Bearer $AT" http://127.0.0.1:8081/protected
//! ```
//!
//! It reads `jwks_uri` from the issuer's discovery document, keeps the keys
//! in a cache (`jwks.rs`), and checks each token's `typ`, signature (with the
//! algorithm of the key its `kid` names), `iss`, `aud` and `exp`, then
//! whether its session has ended, through the status list the token names
//! (`status.rs`). Any failure is a 401 with
//! `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750).

mod jwks;
mod status;

use std::{sync::Arc, time::Duration};

use jsonwebtoken::{Validation, decode, decode_header};
use poem::{
    EndpointExt, Request, Response, Route, Server, get, handler,
    http::{StatusCode, header},
    listener::TcpListener,
    web::Data,
};
use serde::Deserialize;

/// The claims this service uses; latchkey sends more (see its README).
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    email: Option<String>,
    sid: Option<String>,
    status: Option<status::StatusClaim>,
}

struct Verifier {
    issuer: String,
    audience: String,
    jwks: Arc<jwks::Jwks>,
    status: status::StatusLists,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl Verifier {
    async fn discover(issuer: &str, audience: &str, cooldown: Duration, max_stale: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
        let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        let discovery: Discovery = http.get(url).send().await?.error_for_status()?.json().await?;
        anyhow::ensure!(
            discovery.issuer == issuer.trim_end_matches('/'),
            "the discovery document names another issuer"
        );
        let jwks = Arc::new(jwks::Jwks::new(discovery.jwks_uri, http.clone(), cooldown));
        Ok(Self {
            issuer: discovery.issuer,
            audience: audience.into(),
            status: status::StatusLists::new(http, jwks.clone(), max_stale),
            jwks,
        })
    }

    /// The token's claims, or why it is refused.
    async fn verify(&self, token: &str) -> anyhow::Result<Claims> {
        let header = decode_header(token)?;
        anyhow::ensure!(header.typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("at+jwt")), "not an access token");
        let kid = header.kid.ok_or_else(|| anyhow::anyhow!("no kid"))?;
        let key = self.jwks.key(&kid).await?.ok_or_else(|| anyhow::anyhow!("unknown kid"))?;
        // One algorithm: the key's. A header asking for another (or `none`) fails here.
        let mut validation = Validation::new(key.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 60;
        let claims = decode::<Claims>(token, &key.key, &validation)?.claims;
        // A valid token whose session has ended (logout, revocation …) is refused too.
        let reference = &claims.status.as_ref().ok_or_else(|| anyhow::anyhow!("no status claim"))?.status_list;
        anyhow::ensure!(!self.status.revoked(reference).await?, "the session has ended");
        Ok(claims)
    }
}

fn unauthorized() -> Response {
    Response::builder()
        .status(StatusCode::UNAUTHORIZED)
        .header(header::WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#)
        .content_type("application/json")
        .body(r#"{"error":"invalid_token"}"#)
}

#[handler]
async fn protected(req: &Request, verifier: Data<&Arc<Verifier>>) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    let Some(token) = token else {
        return unauthorized();
    };
    match verifier.verify(token.trim()).await {
        Ok(claims) => {
            let body = serde_json::json!({ "sub": claims.sub, "email": claims.email, "sid": claims.sid });
            Response::builder().content_type("application/json").body(body.to_string())
        }
        Err(e) => {
            eprintln!("token refused: {e}");
            unauthorized()
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let issuer = std::env::var("ISSUER").map_err(|_| anyhow::anyhow!("set ISSUER to latchkey's URL"))?;
    let audience = std::env::var("AUDIENCE").unwrap_or_else(|_| "latchkey".into());
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(8081);
    let cooldown = std::env::var("JWKS_COOLDOWN_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(30_000);
    // How long a verified status list is still used when it cannot be renewed.
    let max_stale = std::env::var("STATUS_LIST_MAX_STALE_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let verifier = Arc::new(
        Verifier::discover(&issuer, &audience, Duration::from_millis(cooldown), Duration::from_secs(max_stale)).await?,
    );
    let app = Route::new().at("/protected", get(protected)).data(verifier);
    println!("rust-verifier listening on http://127.0.0.1:{port}");
    Server::new(TcpListener::bind(("127.0.0.1", port))).run(app).await?;
    Ok(())
}
