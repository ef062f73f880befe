//! The HTTP API: poem-openapi handlers by tag. Handlers extract, call one
//! use case and shape the reply; the `///` text here is the OpenAPI document.

mod auth;
mod discovery;
mod health;
mod security;
mod types;
mod users;

use poem::{Endpoint, EndpointExt, IntoEndpoint, Route};
use poem_openapi::{OpenApiService, Tags};

use crate::{AppState, error::render_poem_error};

pub use security::BearerAuth;

#[derive(Tags)]
pub enum ApiTags {
    /// Sign up, log in, refresh, log out.
    Auth,
    /// The signed-in user.
    Users,
    /// Keys and metadata for verifying tokens offline.
    Discovery,
    /// Liveness and readiness probes.
    Health,
}

type Apis = (auth::AuthApi, users::UsersApi, discovery::DiscoveryApi, health::HealthApi);

/// The OpenAPI service. Needs no database: the spec can be generated anywhere.
pub fn service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (auth::AuthApi, users::UsersApi, discovery::DiscoveryApi, health::HealthApi),
        "latchkey",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Authentication token service: email + password accounts, 15-minute signed access \
         JWTs (verify them offline with the keys at `/.well-known/jwks.json`), and rotating \
         7-day refresh tokens. Every error is RFC 9457 problem+json with a stable `code`.",
    )
}

/// The OpenAPI document as pretty JSON, as committed in `openapi/openapi.json`.
pub fn spec_json() -> String {
    service().spec()
}

/// The whole application: API, Swagger UI, spec, middleware.
pub fn app(state: AppState) -> impl Endpoint + 'static {
    let api = service();
    let max_body = state.config.max_body_bytes;
    Route::new()
        .nest("/docs", api.swagger_ui())
        .at("/openapi.json", api.spec_endpoint())
        .nest("/", api)
        .around(move |ep, req| limit_body(ep, req, max_body))
        .data(state)
        .catch_all_error(render_poem_error)
        .into_endpoint()
}

/// Refuses bodies over the cap, whether or not they announce a length.
async fn limit_body<E: Endpoint>(
    ep: std::sync::Arc<E>,
    mut req: poem::Request,
    max: usize,
) -> poem::Result<poem::Response> {
    use poem::{IntoResponse, http::StatusCode};
    let too_large = || poem::Error::from_status(StatusCode::PAYLOAD_TOO_LARGE);
    let declared = req
        .headers()
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let chunked = req.headers().contains_key(poem::http::header::TRANSFER_ENCODING);
    match declared {
        Some(len) if len > max => return Err(too_large()),
        Some(_) => {}
        // HTTP/1.1: no Content-Length and no Transfer-Encoding means no body.
        None if !chunked => {}
        None => {
            let body = req.take_body().into_bytes_limit(max).await.map_err(|_| too_large())?;
            req.set_body(body);
        }
    }
    ep.call(req).await.map(IntoResponse::into_response)
}
