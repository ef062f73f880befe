//! One OpenID Connect provider (Google by default): discovery, the
//! authorization URL, the code exchange (through the `oauth2` crate) and ID
//! token validation against the provider's own keys.
//!
//! Outbound HTTP goes only to the configured issuer's discovery document and
//! to the token endpoint and JWKS it names, never to a URL from a request;
//! redirects are not followed, every call has a timeout and a size cap.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey, Validation,
    jwk::{Jwk, JwkSet},
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet, ExtraTokenFields,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, StandardRevocableToken,
    StandardTokenResponse, TokenUrl,
    basic::{BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tokio::sync::Mutex;
use url::Url;

use crate::config::Google;

/// Connect, then whole-request, limits for calls to the provider.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Discovery documents and key sets are small; anything bigger is refused.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// How long discovery and keys are trusted before being fetched again.
const CACHE_FOR: Duration = Duration::from_secs(3600);
/// An ID token signed by an unknown key refetches the keys, at most this often.
const KEY_REFETCH_AFTER: Duration = Duration::from_secs(30);
/// Clock skew tolerated on the ID token's `exp` and `iat`.
const LEEWAY_SECS: u64 = 60;

/// The token response with the one field OpenID adds.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct IdTokenField {
    pub id_token: String,
}
impl ExtraTokenFields for IdTokenField {}

type TokenResponse = StandardTokenResponse<IdTokenField, BasicTokenType>;
type Client = oauth2::Client<
    BasicErrorResponse,
    TokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// The parts of `/.well-known/openid-configuration` latchkey uses.
#[derive(Debug, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// Why talking to the provider failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Unreachable, timed out, or answered with something unusable.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// The token endpoint refused the code (`invalid_grant` and the like).
    #[error("provider refused the code: {0}")]
    Rejected(String),
    /// The ID token failed a check.
    #[error("invalid ID token: {0}")]
    InvalidIdToken(String),
    /// The ID token is valid but was issued for another sign-in.
    #[error("nonce mismatch")]
    NonceMismatch,
}

/// What a valid ID token says about the person.
#[derive(Debug, Clone)]
pub struct Identity {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct IdClaims {
    sub: String,
    nonce: Option<String>,
    azp: Option<String>,
    /// A string or an array; jsonwebtoken has checked it names this client.
    aud: serde_json::Value,
    email: Option<String>,
    #[serde(default)]
    email_verified: Flag,
    name: Option<String>,
    iat: i64,
}

/// `email_verified` as a boolean, or as the string some providers send.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum Flag {
    Bool(bool),
    Text(String),
    #[default]
    Missing,
}

impl Flag {
    fn is_true(&self) -> bool {
        match self {
            Flag::Bool(b) => *b,
            Flag::Text(s) => s == "true",
            Flag::Missing => false,
        }
    }
}

struct Cached<T> {
    value: Arc<T>,
    fetched: Instant,
}

/// A configured provider. Discovery and keys are fetched on first use and
/// cached, so a provider that is down at start-up does not stop latchkey.
pub struct OidcProvider {
    issuer: String,
    client_id: String,
    client_secret: crate::secret::Secret,
    redirect_uri: RedirectUrl,
    http: reqwest::Client,
    metadata: Mutex<Option<Cached<Metadata>>>,
    keys: Mutex<Option<Cached<JwkSet>>>,
}

/// What the browser is sent to the provider with.
pub struct AuthorizationRequest<'a> {
    pub state: &'a str,
    pub nonce: &'a str,
    pub pkce_challenge: PkceCodeChallenge,
}

impl OidcProvider {
    /// The provider of the Google settings, if its client is configured;
    /// `issuer` is latchkey's own (the default callback is under it).
    pub fn google(config: &Google, issuer: &str) -> anyhow::Result<Option<Self>> {
        let (Some(client_id), Some(client_secret)) = (&config.google_client_id, &config.google_client_secret) else {
            return Ok(None);
        };
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Some(Self {
            issuer: config.google_issuer.trim_end_matches('/').to_string(),
            client_id: client_id.clone(),
            client_secret: client_secret.clone(),
            redirect_uri: RedirectUrl::new(config.redirect_uri(issuer))?,
            http,
            metadata: Mutex::new(None),
            keys: Mutex::new(None),
        }))
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The provider URL that starts a sign-in.
    pub async fn authorize_url(&self, request: AuthorizationRequest<'_>) -> Result<Url, ProviderError> {
        let client = self.client().await?;
        let state = request.state.to_string();
        let (url, _) = client
            .authorize_url(|| CsrfToken::new(state))
            .add_scopes(["openid", "email", "profile"].map(|s| Scope::new(s.into())))
            .add_extra_param("nonce", request.nonce)
            .set_pkce_challenge(request.pkce_challenge)
            .url();
        Ok(url)
    }

    /// Exchanges an authorization code and validates the ID token it brings.
    pub async fn redeem(&self, code: &str, pkce_verifier: &str, nonce: &str) -> Result<Identity, ProviderError> {
        let client = self.client().await?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.into()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.into()))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(e) => ProviderError::Rejected(e.error().to_string()),
                RequestTokenError::Request(e) => ProviderError::Unavailable(format!("token endpoint: {e}")),
                RequestTokenError::Parse(e, _) => ProviderError::Unavailable(format!("token response: {e}")),
                RequestTokenError::Other(e) => ProviderError::Unavailable(format!("token endpoint: {e}")),
            })?;
        self.validate_id_token(&response.extra_fields().id_token, nonce).await
    }

    async fn client(&self) -> Result<Client, ProviderError> {
        let meta = self.metadata().await?;
        let bad = |what: &str, e: url::ParseError| ProviderError::Unavailable(format!("{what}: {e}"));
        Ok(oauth2::Client::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(ClientSecret::new(self.client_secret.expose().to_string()))
            .set_auth_uri(
                AuthUrl::new(meta.authorization_endpoint.clone()).map_err(|e| bad("authorization_endpoint", e))?,
            )
            .set_token_uri(TokenUrl::new(meta.token_endpoint.clone()).map_err(|e| bad("token_endpoint", e))?)
            .set_redirect_uri(self.redirect_uri.clone()))
    }

    async fn metadata(&self) -> Result<Arc<Metadata>, ProviderError> {
        let mut cached = self.metadata.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| c.fetched.elapsed() < CACHE_FOR) {
            return Ok(c.value.clone());
        }
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let meta: Metadata = self.fetch_json(&url).await?;
        // OpenID Connect Discovery §4.3: the document must name the issuer it was fetched from.
        if meta.issuer.trim_end_matches('/') != self.issuer {
            return Err(ProviderError::Unavailable(format!("discovery names issuer {:?}", meta.issuer)));
        }
        for endpoint in [&meta.authorization_endpoint, &meta.token_endpoint, &meta.jwks_uri] {
            self.check_endpoint(endpoint)?;
        }
        let value = Arc::new(meta);
        *cached = Some(Cached { value: value.clone(), fetched: Instant::now() });
        Ok(value)
    }

    /// Endpoints must be https, unless the issuer itself is plain http (a local provider).
    fn check_endpoint(&self, endpoint: &str) -> Result<(), ProviderError> {
        let url = Url::parse(endpoint).map_err(|e| ProviderError::Unavailable(format!("{endpoint:?}: {e}")))?;
        let allowed = url.scheme() == "https" || (url.scheme() == "http" && self.issuer.starts_with("http://"));
        if allowed && url.host().is_some() {
            Ok(())
        } else {
            Err(ProviderError::Unavailable(format!("endpoint {endpoint:?} is not https")))
        }
    }

    async fn fetch_json<T: DeserializeOwned>(&self, url: &str) -> Result<T, ProviderError> {
        let unavailable = |e: String| ProviderError::Unavailable(format!("{url}: {e}"));
        let mut response = self.http.get(url).send().await.map_err(|e| unavailable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(unavailable(format!("status {}", response.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| unavailable(e.to_string()))? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(unavailable("document too large".into()));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| unavailable(e.to_string()))
    }

    /// The provider's key `kid`, refetching the set once if it is not known.
    async fn key(&self, kid: &str) -> Result<Jwk, ProviderError> {
        let mut cached = self.keys.lock().await;
        let find = |set: &JwkSet| set.find(kid).cloned();
        if let Some(c) = cached.as_ref() {
            let fresh = c.fetched.elapsed() < CACHE_FOR;
            if let Some(key) = find(&c.value).filter(|_| fresh) {
                return Ok(key);
            }
            if fresh && c.fetched.elapsed() < KEY_REFETCH_AFTER {
                return Err(ProviderError::InvalidIdToken(format!("unknown key {kid:?}")));
            }
        }
        let meta = self.metadata().await?;
        let set: JwkSet = self.fetch_json(&meta.jwks_uri).await?;
        let key = find(&set);
        *cached = Some(Cached { value: Arc::new(set), fetched: Instant::now() });
        key.ok_or_else(|| ProviderError::InvalidIdToken(format!("unknown key {kid:?}")))
    }

    /// Signature (the provider's keys only, RS256 or ES256), `iss`, `aud`,
    /// `azp`, `exp`, `iat` and `nonce`.
    async fn validate_id_token(&self, token: &str, nonce: &str) -> Result<Identity, ProviderError> {
        let invalid = |e: String| ProviderError::InvalidIdToken(e);
        let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(e.to_string()))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(invalid(format!("algorithm {:?} is not accepted", header.alg)));
        }
        let kid = header.kid.ok_or_else(|| invalid("no kid".into()))?;
        let jwk = self.key(&kid).await?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| invalid(e.to_string()))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer, &format!("{}/", self.issuer)]);
        validation.set_audience(&[&self.client_id]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        let claims =
            jsonwebtoken::decode::<IdClaims>(token, &key, &validation).map_err(|e| invalid(e.to_string()))?.claims;
        // jsonwebtoken requires `iat` but does not judge it: not from the future.
        if claims.iat > chrono::Utc::now().timestamp() + LEEWAY_SECS as i64 {
            return Err(invalid("issued in the future".into()));
        }
        let several_audiences = claims.aud.as_array().is_some_and(|a| a.len() > 1);
        if (several_audiences || claims.azp.is_some()) && claims.azp.as_deref() != Some(self.client_id.as_str()) {
            return Err(invalid("azp is not this client".into()));
        }
        // The nonce travelled in the authorization URL; it is not a secret.
        if claims.nonce.as_deref() != Some(nonce) {
            return Err(ProviderError::NonceMismatch);
        }
        Ok(Identity {
            subject: claims.sub,
            email: claims.email,
            email_verified: claims.email_verified.is_true(),
            name: claims.name,
        })
    }
}
