//! RFC 9457 problem+json: the one shape every failure takes. This module
//! knows the shape and nothing of the domain; which domain error is which
//! status and code is decided in one place, `api::problems`.
//! `render_poem_error` turns what poem itself refuses (routing, body
//! parsing, size limits) into the same shape.

use poem::{Response, http::StatusCode};
use poem_openapi::Object;

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
    /// `mfa_required` only: the single-use token (`lk_mfa_…`, 5 minutes) to
    /// send to `POST /v1/auth/mfa/verify` with a code.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa_token: Option<String>,
    /// `mfa_required` only: what the second step accepts (`totp`, `recovery_code`).
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
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
            mfa_token: None,
            methods: None,
        }
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = Some(errors);
        self
    }
}

/// Whether the cause is the database being unreachable (rather than a bug):
/// those failures are a 503 the client may retry, and recover by themselves.
pub fn is_connection_error(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| cause.downcast_ref::<sea_orm::DbErr>().is_some_and(is_unreachable))
}

/// Whether a database error says the database cannot be reached (or is
/// restarting), as opposed to a statement that failed.
pub fn is_unreachable(err: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => sqlx_unavailable(e),
        _ => false,
    }
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

/// A problem+json response, for middleware that answers before any handler.
pub fn problem_response(status: StatusCode, code: &str, detail: &str) -> Response {
    let body = serde_json::to_vec(&Problem::new(status, code, detail)).unwrap_or_default();
    Response::builder().status(status).content_type(PROBLEM_JSON).body(body)
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
    let mut resp = problem_response(status, code, &detail);
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
