use bytes::Bytes;
use poem::{IntoResponse, Response};
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::Header,
    payload::{Json, Payload},
    registry::{MetaSchemaRef, Registry},
    types::Type,
};

use super::ApiTags;
use crate::{AppState, token::jwks::JwkSet};

#[derive(Default)]
pub struct DiscoveryApi;

/// The JWKS, served as bytes serialised once per key-ring version.
pub struct JwksBody(Bytes);

impl Payload for JwksBody {
    const CONTENT_TYPE: &'static str = "application/json";

    fn schema_ref() -> MetaSchemaRef {
        JwkSet::schema_ref()
    }

    fn register(registry: &mut Registry) {
        JwkSet::register(registry);
    }
}

impl IntoResponse for JwksBody {
    fn into_response(self) -> Response {
        Response::builder().content_type(Self::CONTENT_TYPE).body(self.0)
    }
}

/// Verifiers may cache the key set this long; new keys are published one
/// rotation before they sign, so a cached set always knows the active key.
const JWKS_CACHE_CONTROL: &str = "public, max-age=300";

#[derive(ApiResponse)]
pub enum JwksResponse {
    /// The public keys (next, active and retired).
    #[oai(status = 200)]
    Ok(JwksBody, #[oai(header = "ETag")] String, #[oai(header = "Cache-Control")] String),
    /// The key set has not changed since the ETag given in `If-None-Match`.
    #[oai(status = 304)]
    NotModified(#[oai(header = "ETag")] String, #[oai(header = "Cache-Control")] String),
}

/// OpenID Provider metadata, for libraries and gateways configured with the issuer URL alone.
#[derive(Debug, Object)]
pub struct OpenIdConfiguration {
    /// The `iss` of every token.
    pub issuer: String,
    /// Where the signing keys are published.
    pub jwks_uri: String,
    /// Exchanges a refresh token for new tokens.
    pub token_endpoint: String,
    /// Revokes a refresh token (RFC 7009 style).
    pub revocation_endpoint: String,
    /// `refresh_token`: the only OAuth grant latchkey's token endpoint takes.
    pub grant_types_supported: Vec<String>,
    /// `none`: latchkey has no authorization endpoint of its own.
    pub response_types_supported: Vec<String>,
    /// `public`: `sub` is the same user id for every audience.
    pub subject_types_supported: Vec<String>,
    /// The algorithms of the published keys.
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// `none`: clients are public (SPAs); no client secret is sent.
    pub token_endpoint_auth_methods_supported: Vec<String>,
}

/// The key set, or 304 when `if_none_match` names the current one. Also
/// served ahead of the middleware stack (see `api::app`).
pub fn jwks(state: &AppState, if_none_match: Option<&str>) -> JwksResponse {
    let ring = state.keys.load();
    let (body, etag) = ring.jwks();
    let matches = if_none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        JwksResponse::NotModified(etag.to_string(), JWKS_CACHE_CONTROL.into())
    } else {
        JwksResponse::Ok(JwksBody(body.clone()), etag.to_string(), JWKS_CACHE_CONTROL.into())
    }
}

#[OpenApi(tag = "ApiTags::Discovery")]
impl DiscoveryApi {
    /// The JSON Web Key Set
    ///
    /// Public keys for verifying access tokens offline. Pick the key by the
    /// token's `kid` and use that key's `alg`. Send `If-None-Match` with the
    /// last `ETag` to get a 304 when nothing changed.
    #[oai(path = "/.well-known/jwks.json", method = "get", operation_id = "getJwks")]
    async fn jwks(
        &self,
        state: poem::web::Data<&AppState>,
        /// The `ETag` of a copy you hold; a match answers 304.
        #[oai(name = "If-None-Match")]
        if_none_match: Header<Option<String>>,
    ) -> JwksResponse {
        jwks(&state, if_none_match.0.as_deref())
    }

    /// OpenID Provider metadata
    ///
    /// Discovery document pointing at the JWKS and the token endpoints.
    #[oai(path = "/.well-known/openid-configuration", method = "get", operation_id = "getOpenIdConfiguration")]
    async fn openid_configuration(&self, state: poem::web::Data<&AppState>) -> Json<OpenIdConfiguration> {
        let issuer = state.tokens.issuer.clone();
        let mut algs: Vec<String> = state.keys.load().keys().iter().map(|k| format!("{:?}", k.alg)).collect();
        algs.sort();
        algs.dedup();
        Json(OpenIdConfiguration {
            jwks_uri: format!("{issuer}/.well-known/jwks.json"),
            token_endpoint: format!("{issuer}/v1/auth/refresh"),
            revocation_endpoint: format!("{issuer}/v1/auth/revoke"),
            issuer,
            grant_types_supported: vec!["refresh_token".into()],
            response_types_supported: vec!["none".into()],
            subject_types_supported: vec!["public".into()],
            id_token_signing_alg_values_supported: algs,
            token_endpoint_auth_methods_supported: vec!["none".into()],
        })
    }
}
