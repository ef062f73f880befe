use bytes::Bytes;
use poem::{IntoResponse, Response};
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::Header,
    payload::{Json, Payload},
    registry::{MetaSchemaRef, Registry},
    types::Type,
};

use super::{ApiError, ApiTags};
use crate::{
    AppState,
    token::{jwks::JwkSet, status::STATUS_LIST_MEDIA_TYPE},
};

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

/// A Status List Token (draft-ietf-oauth-status-list-20), as signed.
pub struct StatusListBody(Bytes);

impl Payload for StatusListBody {
    const CONTENT_TYPE: &'static str = STATUS_LIST_MEDIA_TYPE;

    fn schema_ref() -> MetaSchemaRef {
        String::schema_ref()
    }
}

impl IntoResponse for StatusListBody {
    fn into_response(self) -> Response {
        Response::builder().content_type(Self::CONTENT_TYPE).body(self.0)
    }
}

#[derive(ApiResponse)]
pub enum StatusListResponse {
    /// The list: a JWS (`typ` `statuslist+jwt`) signed by the active key of
    /// the JWKS, `sub` this URL; bit `idx` of `status_list.lst` is 1 once the
    /// session of the tokens naming `idx` has ended. Cache it for `ttl`.
    #[oai(status = 200)]
    Ok(StatusListBody, #[oai(header = "ETag")] String, #[oai(header = "Cache-Control")] String),
    /// The list has not changed since the ETag given in `If-None-Match`.
    #[oai(status = 304)]
    NotModified(#[oai(header = "ETag")] String, #[oai(header = "Cache-Control")] String),
}

/// Every status list a valid access token may name (Status List Aggregation).
#[derive(Debug, Object)]
pub struct StatusListAggregation {
    pub status_lists: Vec<String>,
}

/// A status list, or 304 when `if_none_match` names the current one. Also
/// served ahead of the middleware stack (see `api::app`).
pub async fn status_list(
    state: &AppState,
    id: uuid::Uuid,
    if_none_match: Option<&str>,
) -> Result<StatusListResponse, ApiError> {
    let lists = &state.status_lists;
    let served = lists
        .get_or_load(&state.db, &state.keys.load(), id, state.clock.now())
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(ApiError::no_status_list)?;
    // No longer than `ttl`: an HTTP cache in front of a resource server adds its own age.
    let cache_control = format!("public, max-age={}", lists.ttl_secs());
    let matches = if_none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == served.etag || t.trim() == "*"));
    Ok(if matches {
        StatusListResponse::NotModified(served.etag.clone(), cache_control)
    } else {
        StatusListResponse::Ok(StatusListBody(served.jwt.clone()), served.etag.clone(), cache_control)
    })
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
    /// Lists every status list a valid access token may name.
    pub status_list_aggregation_endpoint: String,
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

    /// A status list
    ///
    /// The Token Status List named by the `status.status_list.uri` of access
    /// tokens (draft-ietf-oauth-status-list-20): no authentication. Verify it
    /// with the JWKS like an access token, but with `typ` `statuslist+jwt` and
    /// `sub` equal to the URL fetched; cache it for its `ttl`; refuse a token
    /// whose bit is 1, or whose `idx` is beyond the list. Errors: 404
    /// `status_list_not_found`; 400 `malformed_request` (not a list id).
    #[oai(path = "/v1/status-lists/:id", method = "get", operation_id = "getStatusList")]
    async fn status_list(
        &self,
        state: poem::web::Data<&AppState>,
        /// The list's id, as in the token's `uri`.
        id: poem_openapi::param::Path<uuid::Uuid>,
        /// The `ETag` of a copy you hold; a match answers 304.
        #[oai(name = "If-None-Match")]
        if_none_match: Header<Option<String>>,
    ) -> Result<StatusListResponse, ApiError> {
        status_list(&state, id.0, if_none_match.0.as_deref()).await
    }

    /// Every status list
    ///
    /// Status List Aggregation (draft-ietf-oauth-status-list-20 §9): the URI
    /// of every list a valid access token may name, for resource servers that
    /// fetch them ahead of time.
    #[oai(path = "/v1/status-lists", method = "get", operation_id = "listStatusLists")]
    async fn status_lists(&self, state: poem::web::Data<&AppState>) -> Result<Json<StatusListAggregation>, ApiError> {
        let status_lists = state.status_lists.all_uris(&state.db).await.map_err(ApiError::internal)?;
        Ok(Json(StatusListAggregation { status_lists }))
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
            status_list_aggregation_endpoint: format!("{issuer}/v1/status-lists"),
            issuer,
            grant_types_supported: vec!["refresh_token".into()],
            response_types_supported: vec!["none".into()],
            subject_types_supported: vec!["public".into()],
            id_token_signing_alg_values_supported: algs,
            token_endpoint_auth_methods_supported: vec!["none".into()],
        })
    }
}
