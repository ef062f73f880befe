//! RFC 9457 problem+json: the one shape every failure takes.
//!
//! `ApiError` is what handlers return; `render_poem_error` turns everything
//! else (routing, body parsing, size limits, authentication) into the same shape.

use poem::{Response, http::StatusCode};
use poem_openapi::{ApiResponse, Object, payload::Json};

pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem detail (RFC 9457). `code` is stable: match on it, not on `title`.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct Problem {
    /// Always `about:blank`: the `code` identifies the problem.
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub type_: String,
    /// Short human-readable summary of the problem kind.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this occurrence.
    pub detail: String,
    /// Stable machine-readable error code, for example `invalid_credentials`.
    pub code: String,
    /// Field-level failures, for validation errors.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

/// One failed rule on one input field.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct FieldError {
    /// The request field, for example `password`.
    pub field: String,
    /// The rule broken, for example `too_short`.
    pub rule: String,
    /// A sentence for people.
    pub message: String,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self {
            type_: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.into(),
            errors: None,
        }
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = Some(errors);
        self
    }
}

/// The error responses of the API. Each operation's description lists the codes it returns.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request is malformed: unparseable JSON, a missing field or a wrong type (`malformed_request`), or a token that is invalid or used up.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// Credentials or token missing or invalid (`invalid_credentials`, `invalid_token`, `invalid_refresh_token`, `refresh_token_reused`).
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>, #[oai(header = "WWW-Authenticate")] String),
    /// Authenticated, but not allowed (`email_not_verified`, `invalid_current_password`, `reauthentication_required`).
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// No such resource of the caller's (`profile_not_found`, `session_not_found`).
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// The body took too long to arrive (`request_timeout`).
    #[oai(status = 408, content_type = "application/problem+json")]
    RequestTimeout(Json<Problem>),
    /// The request body is larger than the configured cap (`payload_too_large`).
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Problem>),
    /// The body is not `application/json` (`unsupported_media_type`).
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// Too many requests (`rate_limited`): wait `Retry-After` seconds.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(
        Json<Problem>,
        /// Seconds until the window resets.
        #[oai(header = "Retry-After")]
        String,
        /// Requests allowed per window.
        #[oai(header = "RateLimit-Limit")]
        String,
        /// Requests left in this window (0).
        #[oai(header = "RateLimit-Remaining")]
        String,
        /// Seconds until the window resets.
        #[oai(header = "RateLimit-Reset")]
        String,
    ),
    /// A field failed validation (`invalid_email`, `invalid_password`, `invalid_name`, `invalid_profile`); `errors` names each rule broken.
    #[oai(status = 422, content_type = "application/problem+json")]
    Unprocessable(Json<Problem>),
    /// Something failed on our side (`internal_error`); the cause is logged, never returned.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// A dependency, such as the database, is unavailable (`service_unavailable`).
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>),
}

impl ApiError {
    pub fn bad_request(code: &str, detail: impl Into<String>) -> Self {
        Self::BadRequest(Json(Problem::new(StatusCode::BAD_REQUEST, code, detail)))
    }

    /// A 401 with the RFC 6750 challenge.
    pub fn unauthorized(code: &str, detail: impl Into<String>) -> Self {
        let challenge = if code == "invalid_token" { r#"Bearer error="invalid_token""# } else { "Bearer" };
        Self::Unauthorized(Json(Problem::new(StatusCode::UNAUTHORIZED, code, detail)), challenge.into())
    }

    pub fn forbidden(code: &str, detail: impl Into<String>) -> Self {
        Self::Forbidden(Json(Problem::new(StatusCode::FORBIDDEN, code, detail)))
    }

    /// A 429 with `Retry-After` and the `RateLimit-*` headers.
    pub fn rate_limited(limited: crate::limits::Limited) -> Self {
        let secs = limited.retry_after.as_secs().to_string();
        Self::TooManyRequests(
            Json(Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("Too many attempts; try again in {secs} seconds."),
            )),
            secs.clone(),
            limited.limit.to_string(),
            "0".into(),
            secs,
        )
    }

    pub fn not_found(code: &str, detail: impl Into<String>) -> Self {
        Self::NotFound(Json(Problem::new(StatusCode::NOT_FOUND, code, detail)))
    }

    pub fn unprocessable(code: &str, detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        Self::Unprocessable(Json(Problem::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail).with_errors(errors)))
    }

    /// A dependency (the database) cannot be reached; the client may retry.
    pub fn unavailable() -> Self {
        Self::Unavailable(Json(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "The service is temporarily unavailable; try again shortly.",
        )))
    }

    /// Logs the whole cause chain once and returns a body that says nothing about it.
    pub fn internal(err: anyhow::Error) -> Self {
        if is_connection_error(&err) {
            tracing::error!(error = format!("{err:#}"), "database unavailable");
            return Self::unavailable();
        }
        tracing::error!(error = format!("{err:#}"), "internal error");
        Self::Internal(Json(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "An unexpected error occurred.",
        )))
    }
}

/// Whether the cause is the database being unreachable (rather than a bug):
/// those failures are a 503 the client may retry, and recover by themselves.
fn is_connection_error(err: &anyhow::Error) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    err.chain().any(|cause| match cause.downcast_ref::<DbErr>() {
        Some(DbErr::ConnectionAcquire(_) | DbErr::Conn(_)) => true,
        Some(DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))) => sqlx_unavailable(e),
        _ => false,
    })
}

fn sqlx_unavailable(err: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error;
    match err {
        Error::Io(_) | Error::Tls(_) | Error::PoolTimedOut | Error::PoolClosed | Error::WorkerCrashed => true,
        // SQLSTATE class 08 (connection exception) and 57P (server shutting down or starting).
        Error::Database(e) => e.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

/// A parse error's message without the input it quotes. poem-openapi says
/// what it found ("Expected input type \"string\", found {…}."), and what was
/// found may be a secret sent in the wrong place or type (a refresh token as
/// a number, a password in an array): it is never sent back.
fn without_input(message: &str) -> String {
    let kept = match message.find(", found") {
        Some(at) => format!("{}.", &message[..at]),
        None => message.to_string(),
    };
    kept.chars().take(200).collect()
}

/// The catch-all: any error that is not already a problem response becomes one.
pub async fn render_poem_error(err: poem::Error) -> Response {
    if err.is_from_response() {
        return err.into_response();
    }
    let status = err.status();
    let (code, detail) = match status {
        StatusCode::BAD_REQUEST => ("malformed_request", without_input(&err.to_string())),
        StatusCode::UNAUTHORIZED => ("invalid_token", "A valid bearer access token is required.".into()),
        StatusCode::NOT_FOUND => ("not_found", "No such resource.".into()),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "Method not allowed on this resource.".into()),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "The request body is too large.".into()),
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", "The request body did not arrive in time.".into()),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", without_input(&err.to_string())),
        s if s.is_client_error() => ("bad_request", without_input(&err.to_string())),
        _ => {
            tracing::error!(error = %err, %status, "unhandled error");
            ("internal_error", "An unexpected error occurred.".into())
        }
    };
    let body = serde_json::to_vec(&Problem::new(status, code, detail)).unwrap_or_default();
    let mut resp = Response::builder().status(status).content_type(PROBLEM_JSON).body(body);
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut()
            .insert("www-authenticate", poem::http::HeaderValue::from_static(r#"Bearer error="invalid_token""#));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_never_quote_the_input() {
        let message = r#"parse request payload error: failed to parse "RefreshRequest": Expected input type "string", found {"lk":"lk_rt_secret"}."#;
        let detail = without_input(message);
        assert!(!detail.contains("lk_rt_secret"), "{detail}");
        assert!(detail.contains("RefreshRequest") && detail.ends_with("\"string\"."), "{detail}");
        assert_eq!(without_input("expected value at line 1 column 1"), "expected value at line 1 column 1");
    }
}
