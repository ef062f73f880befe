//! The HTTP API: poem-openapi handlers by tag. Handlers extract, call one
//! use case and shape the reply; the `///` text here is the OpenAPI document.

mod auth;
mod client;
mod demo;
mod discovery;
mod fields;
mod health;
mod mfa;
mod oauth;
mod observe;
mod passkeys;
mod problems;
mod security;
mod sessions;
mod types;
mod users;

use poem::{Endpoint, EndpointExt, IntoEndpoint, Route};
use poem_openapi::{OpenApiService, Tags};

use crate::{AppState, error::render_poem_error};

pub use client::client_info;
pub use problems::ApiError;
pub use security::{BearerAuth, OptionalBearer};

#[derive(Tags)]
pub enum ApiTags {
    /// Sign up, log in, refresh, log out.
    Auth,
    /// The signed-in user: profile, account, security log.
    Users,
    /// Second factors and passkeys: TOTP, recovery codes, passkey registration and sign-in.
    Mfa,
    /// The signed-in user's sessions.
    Sessions,
    /// Keys and metadata for verifying tokens offline.
    Discovery,
    /// Liveness and readiness probes.
    Health,
}

/// Every group of operations, in the document's order.
type Apis = (
    auth::AuthApi,
    oauth::OAuthApi,
    users::UsersApi,
    mfa::MfaApi,
    passkeys::PasskeysApi,
    sessions::SessionsApi,
    discovery::DiscoveryApi,
    health::HealthApi,
);

/// The OpenAPI service. Needs no database: the spec can be generated anywhere.
pub fn service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(Apis::default(), "latchkey", env!("CARGO_PKG_VERSION")).description(
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
    let max_body = state.config.limits.max_body_bytes;
    let browser = state.browser.clone();
    let jwks_state = state.clone();
    let observed = state.clone();
    Route::new()
        .nest("/docs", OnFirstUse::new(swagger_ui))
        .at("/openapi.json", OnFirstUse::new(spec_document))
        .nest("/demo", demo::routes())
        .nest("/", api)
        .around(move |ep, req| limit_body(ep, req, max_body))
        .data(state)
        .catch_all_error(render_poem_error)
        .around(crate::browser::cookies::write_queued)
        .around(move |ep, req| crate::browser::cors::handle(ep, req, browser.clone()))
        .around(move |ep, req| serve_jwks_first(ep, req, jwks_state.clone()))
        .around(security_headers)
        .around(move |ep, req| observe::observe(ep, req, observed.clone()))
        .into_endpoint()
}

/// `/metrics` alone, for a listener of its own (`LATCHKEY_METRICS_BIND`).
pub fn metrics_app(state: AppState) -> impl Endpoint + 'static {
    poem::endpoint::make(move |req: poem::Request| {
        let state = state.clone();
        async move {
            use poem::IntoResponse;
            if req.uri().path() == observe::METRICS_PATH && req.method() == poem::http::Method::GET {
                observe::metrics_page(&state).await
            } else {
                poem::http::StatusCode::NOT_FOUND.into_response()
            }
        }
    })
}

/// `Cache-Control` of every answer that carries a token or a personal
/// value: no cache may keep it.
const NO_STORE: &str = "no-store";

fn no_store() -> String {
    NO_STORE.into()
}

/// Headers every answer carries: no content sniffing, no framing (Swagger UI
/// included: a page that holds a bearer token must not be framed and
/// clickjacked), and for the API, whose answers are personal or one-off,
/// no caching unless an operation says otherwise (JWKS and discovery do).
async fn security_headers<E: Endpoint>(ep: std::sync::Arc<E>, req: poem::Request) -> poem::Result<poem::Response> {
    use poem::{
        IntoResponse,
        http::{HeaderValue, header},
    };
    let api = req.uri().path().starts_with("/v1/");
    let docs = req.uri().path().starts_with("/docs");
    let mut resp = match ep.call(req).await {
        Ok(resp) => resp.into_response(),
        Err(err) => err.into_response(),
    };
    let headers = resp.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.entry(header::X_FRAME_OPTIONS).or_insert(HeaderValue::from_static("DENY"));
    if docs {
        headers.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static("frame-ancestors 'none'"));
    }
    if api {
        headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static(NO_STORE));
    }
    Ok(resp)
}

/// Swagger UI, with the document inlined into its page.
fn swagger_ui() -> impl Endpoint {
    let page = bytes::Bytes::from(service().swagger_ui_html());
    let html = move |_| poem::Response::builder().content_type("text/html; charset=utf-8").body(page.clone());
    Route::new().at("/", poem::endpoint::make_sync(html))
}

/// The OpenAPI document, as `spec_json` renders it.
fn spec_document() -> impl Endpoint {
    let document = bytes::Bytes::from(spec_json());
    poem::endpoint::make_sync(move |_| {
        poem::Response::builder().content_type("application/json").body(document.clone())
    })
}

/// An endpoint built by its first request. Swagger UI inlines a 1.5 MB
/// script bundle into its page and the document is generated from every
/// type's metadata: a server nobody browses should not hold either (they were
/// a third of its idle memory).
struct OnFirstUse<F, E> {
    make: F,
    built: std::sync::OnceLock<E>,
}

impl<F: Fn() -> E, E> OnFirstUse<F, E> {
    fn new(make: F) -> Self {
        Self { make, built: std::sync::OnceLock::new() }
    }
}

impl<F: Fn() -> E + Send + Sync, E: Endpoint> Endpoint for OnFirstUse<F, E> {
    type Output = E::Output;

    async fn call(&self, req: poem::Request) -> poem::Result<Self::Output> {
        self.built.get_or_init(&self.make).call(req).await
    }
}

/// Where the status lists are served (`<this><id>`).
const STATUS_LISTS: &str = "/v1/status-lists/";

/// `GET /.well-known/jwks.json` and the status lists are fetched by every
/// verifier of every service: they are answered here, before routing and the
/// middleware they do not need (body limits, cookies), with the handlers the
/// OpenAPI operations use, so the two cannot differ.
async fn serve_jwks_first<E: Endpoint>(
    ep: std::sync::Arc<E>,
    req: poem::Request,
    state: AppState,
) -> poem::Result<poem::Response> {
    use poem::IntoResponse;
    let path = req.uri().path();
    let first = path == "/.well-known/jwks.json" || path.starts_with(STATUS_LISTS);
    if req.method() != poem::http::Method::GET || !first {
        return ep.call(req).await.map(IntoResponse::into_response);
    }
    let header = |name| req.headers().get(name);
    let if_none_match = header(poem::http::header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
    let mut resp = match req.uri().path() {
        "/.well-known/jwks.json" => discovery::jwks(&state, if_none_match).into_response(),
        path => {
            let id = path.strip_prefix(STATUS_LISTS).and_then(|id| uuid::Uuid::parse_str(id).ok());
            let Some(id) = id else {
                return ep.call(req).await.map(IntoResponse::into_response);
            };
            match discovery::status_list(&state, id, if_none_match).await {
                Ok(answer) => answer.into_response(),
                Err(problem) => problem.into_response(),
            }
        }
    };
    crate::browser::cors::decorate(&mut resp, &state.browser, header(poem::http::header::ORIGIN), req.uri().path());
    Ok(resp)
}

/// How much of a refused body is read and thrown away before answering 413,
/// so that a client still sending gets to read the answer instead of a reset.
const DRAIN_LIMIT: u64 = 1 << 20;
/// How long a request body may take to arrive, in all.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Refuses bodies over the cap, whether or not they announce a length (a
/// chunked HTTP/1.1 body, or any HTTP/2 body, may not), and bodies that take
/// longer than `BODY_TIMEOUT` to arrive, however they trickle in: the body
/// is read whole here, before any handler sees it.
async fn limit_body<E: Endpoint>(
    ep: std::sync::Arc<E>,
    mut req: poem::Request,
    max: usize,
) -> poem::Result<poem::Response> {
    use poem::{IntoResponse, http::StatusCode};
    use tokio::io::AsyncReadExt;
    let header = |name| req.headers().get(name).and_then(|v: &poem::http::HeaderValue| v.to_str().ok());
    let declared = header(poem::http::header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    // Reading the rest of a body the client has not sent yet would invite it
    // (`100 Continue`): refuse those without draining.
    let expects_continue = header(poem::http::header::EXPECT).is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    let has_body = match declared {
        Some(len) if len > max as u64 => {
            return Err(refuse(req.take_body(), len <= DRAIN_LIMIT && !expects_continue).await);
        }
        Some(len) => len > 0,
        // HTTP/1.x with neither Content-Length nor Transfer-Encoding has no body.
        None => {
            req.version() >= poem::http::Version::HTTP_2
                || req.headers().contains_key(poem::http::header::TRANSFER_ENCODING)
        }
    };
    if has_body {
        let mut body = req.take_body().into_async_read();
        let mut bytes = Vec::new();
        let mut capped = (&mut body).take(max as u64 + 1);
        let read = tokio::time::timeout(BODY_TIMEOUT, capped.read_to_end(&mut bytes)).await;
        match read {
            Err(_) => return Err(poem::Error::from_status(StatusCode::REQUEST_TIMEOUT)),
            Ok(Err(_)) => return Err(poem::Error::from_status(StatusCode::BAD_REQUEST)),
            Ok(Ok(_)) if bytes.len() > max => {
                return Err(refuse(poem::Body::from_async_read(body), !expects_continue).await);
            }
            Ok(Ok(_)) => req.set_body(bytes),
        }
    }
    ep.call(req).await.map(IntoResponse::into_response)
}

/// The 413 error, after reading (at most `DRAIN_LIMIT` of) the rest of the body when `drain`.
async fn refuse(body: poem::Body, drain: bool) -> poem::Error {
    if drain {
        let mut rest = tokio::io::AsyncReadExt::take(body.into_async_read(), DRAIN_LIMIT);
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(2), tokio::io::copy(&mut rest, &mut tokio::io::sink()))
                .await;
    }
    poem::Error::from_status(poem::http::StatusCode::PAYLOAD_TOO_LARGE)
}
