//! Every failure's answer, in one place: which domain error is which HTTP
//! status and `code`, with the sentence that goes with it. The README's
//! "Errors" table is this file. Handlers return `ApiError` and use `?` on
//! the use cases' errors; the `From` impls below decide the rest.

use poem::http::StatusCode;
use poem_openapi::{ApiResponse, payload::Json};

use crate::{
    auth::{
        factors::MfaError,
        flow::FlowError,
        login::LoginError,
        passkeys::PasskeyError,
        profile::ProfileError,
        signup::SignupError,
        validate::{BrokenRule, Invalid},
    },
    browser::Refused,
    error::{FieldError, Problem, is_connection_error},
    fault::Fault,
    limits::Limited,
    mfa::challenge::{self, MfaRequired, VerifyError},
    oauth::SignInError,
    session::RefreshError,
    store::email_tokens::Unusable,
};

/// The error responses of the API. Each operation's description lists the codes it returns.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request is malformed: unparseable JSON, a missing field or a wrong type (`malformed_request`), or a token that is invalid or used up.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// Credentials or token missing or invalid (`invalid_credentials`, `invalid_token`, `invalid_refresh_token`, `refresh_token_reused`).
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>, #[oai(header = "WWW-Authenticate")] String),
    /// Authenticated, but not allowed (`email_not_verified`, `invalid_current_password`, `reauthentication_required`), or a second factor is needed (`mfa_required`, with `mfa_token` and `methods`).
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(
        Json<Problem>,
        /// `no-store` on `mfa_required`, whose `mfa_token` is a credential.
        #[oai(header = "Cache-Control")]
        Option<String>,
    ),
    /// No such resource of the caller's (`profile_not_found`, `session_not_found`).
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// The request conflicts with the resource's state (`totp_already_enabled`).
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
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
        Self::Forbidden(Json(Problem::new(StatusCode::FORBIDDEN, code, detail)), None)
    }

    /// A 429 with `Retry-After` and the `RateLimit-*` headers.
    pub fn rate_limited(limited: Limited) -> Self {
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

    /// A correct first factor: the login continues at `POST /v1/auth/mfa/verify`.
    pub fn mfa_required(required: MfaRequired) -> Self {
        let mut problem = Problem::new(
            StatusCode::FORBIDDEN,
            "mfa_required",
            "This account has a second factor: send mfa_token and a code to /v1/auth/mfa/verify.",
        );
        problem.mfa_token = Some(required.mfa_token.expose());
        problem.methods = Some(challenge::METHODS.iter().map(|m| (*m).to_string()).collect());
        Self::Forbidden(Json(problem), Some(super::no_store()))
    }

    pub fn not_found(code: &str, detail: impl Into<String>) -> Self {
        Self::NotFound(Json(Problem::new(StatusCode::NOT_FOUND, code, detail)))
    }

    pub fn unprocessable(code: &str, detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        Self::Unprocessable(Json(Problem::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail).with_errors(errors)))
    }

    /// No usable bearer token: missing, malformed, forged or expired.
    pub fn invalid_token() -> Self {
        Self::unauthorized("invalid_token", "The access token is invalid or expired.")
    }

    /// A valid bearer token whose session has ended.
    pub fn session_ended() -> Self {
        Self::unauthorized("invalid_token", "The session of this token has ended.")
    }

    /// No status list with this id (never made, or retired).
    pub fn no_status_list() -> Self {
        Self::not_found("status_list_not_found", "No status list with this id.")
    }

    /// A refresh or CSRF request with no refresh token in the body or the cookie.
    pub fn no_refresh_token() -> Self {
        Self::unauthorized("invalid_refresh_token", "No refresh token: send it in the body, or the refresh cookie.")
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
        // The cause goes to the log (with the request id, from the span);
        // the answer names only the id, to quote when reporting it.
        tracing::error!(error = format!("{err:#}"), "internal error");
        let detail = match crate::observe::request_id::current() {
            Some(id) => format!("An unexpected error occurred (request id {id})."),
            None => "An unexpected error occurred.".to_string(),
        };
        Self::Internal(Json(Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", &detail)))
    }
}

/// What any use case can fail with besides its own answers.
impl From<Fault> for ApiError {
    fn from(fault: Fault) -> Self {
        match fault {
            Fault::RateLimited(limited) => Self::rate_limited(limited),
            Fault::Internal(e) => Self::internal(e),
        }
    }
}

impl From<BrokenRule> for FieldError {
    fn from(rule: BrokenRule) -> Self {
        Self { field: rule.field.into(), rule: rule.rule.into(), message: rule.message.into() }
    }
}

impl From<Invalid> for ApiError {
    fn from(invalid: Invalid) -> Self {
        let errors = invalid.errors.into_iter().map(Into::into).collect();
        Self::unprocessable(invalid.code, "The request has invalid fields.", errors)
    }
}

impl From<Unusable> for ApiError {
    fn from(unusable: Unusable) -> Self {
        match unusable {
            Unusable::Unknown => Self::bad_request("token_invalid", "This link is not valid. Ask for a new one."),
            Unusable::Expired => Self::bad_request("token_expired", "This link has expired. Ask for a new one."),
            Unusable::Used => Self::bad_request("token_used", "This link was already used."),
            Unusable::Superseded => {
                Self::bad_request("token_superseded", "A newer link was sent since this one; use the latest.")
            }
        }
    }
}

impl From<LoginError> for ApiError {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::InvalidCredentials => {
                Self::unauthorized("invalid_credentials", "The email or password is incorrect.")
            }
            LoginError::EmailNotVerified => {
                Self::forbidden("email_not_verified", "Verify your email address before logging in.")
            }
            LoginError::MfaRequired(required) => Self::mfa_required(required),
            LoginError::Fault(fault) => fault.into(),
        }
    }
}

impl From<SignupError> for ApiError {
    fn from(e: SignupError) -> Self {
        match e {
            SignupError::Invalid(invalid) => invalid.into(),
            SignupError::Fault(fault) => fault.into(),
        }
    }
}

impl From<RefreshError> for ApiError {
    fn from(e: RefreshError) -> Self {
        match e {
            RefreshError::Invalid => {
                Self::unauthorized("invalid_refresh_token", "The refresh token is unknown, expired or revoked.")
            }
            RefreshError::Reused => Self::unauthorized(
                "refresh_token_reused",
                "This refresh token was already used; the session has been revoked.",
            ),
            RefreshError::Fault(fault) => fault.into(),
        }
    }
}

impl From<FlowError> for ApiError {
    fn from(e: FlowError) -> Self {
        match e {
            FlowError::Token(unusable) => unusable.into(),
            FlowError::Invalid(invalid) => invalid.into(),
            FlowError::WrongPassword => {
                Self::forbidden("invalid_current_password", "The current password is incorrect.")
            }
            FlowError::ReauthenticationRequired => Self::forbidden(
                "reauthentication_required",
                "This account has no password: log in again, then retry within five minutes.",
            ),
            FlowError::Fault(fault) => fault.into(),
        }
    }
}

impl From<ProfileError> for ApiError {
    fn from(e: ProfileError) -> Self {
        match e {
            ProfileError::Invalid(invalid) => invalid.into(),
            ProfileError::Fault(fault) => fault.into(),
        }
    }
}

impl From<SignInError> for ApiError {
    fn from(e: SignInError) -> Self {
        match e {
            SignInError::NotConfigured => Self::not_found(
                "provider_not_configured",
                "Sign in with Google is not configured (LATCHKEY_GOOGLE_CLIENT_ID and LATCHKEY_GOOGLE_CLIENT_SECRET).",
            ),
            SignInError::InvalidChallenge => Self::bad_request(
                "invalid_code_challenge",
                "code_challenge must be a PKCE S256 challenge (43 base64url characters), code_challenge_method S256.",
            ),
            SignInError::InvalidRedirect => Self::bad_request(
                "invalid_redirect",
                "redirect_to must be under LATCHKEY_APP_URL or an entry of LATCHKEY_REDIRECT_ALLOW_LIST.",
            ),
            SignInError::NoRedirect(failure) => Self::bad_request(
                failure.code(),
                "This sign-in is unknown, expired or already finished. Start again from the app.",
            ),
            SignInError::InvalidCode => {
                Self::bad_request("invalid_code", "The login code is unknown, expired or already used.")
            }
            SignInError::MfaRequired(required) => Self::mfa_required(required),
            SignInError::Fault(fault) => fault.into(),
        }
    }
}

impl From<Refused> for ApiError {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::Origin => Self::forbidden(
                "invalid_origin",
                "This origin may not make cookie-authenticated requests (LATCHKEY_CORS_ORIGINS).",
            ),
            Refused::CsrfToken => Self::forbidden(
                "invalid_csrf_token",
                "Cookie-authenticated requests need the X-CSRF-Token header set to the session's CSRF token.",
            ),
        }
    }
}

const INVALID_MFA_CODE: &str = "The code is wrong, or was already used.";

impl From<MfaError> for ApiError {
    fn from(e: MfaError) -> Self {
        match e {
            MfaError::Reauthenticate(flow) => flow.into(),
            MfaError::InvalidCode => Self::bad_request("invalid_mfa_code", INVALID_MFA_CODE),
            MfaError::AlreadyEnabled => Self::Conflict(Json(Problem::new(
                StatusCode::CONFLICT,
                "totp_already_enabled",
                "TOTP is already on for this account; remove it before enrolling again.",
            ))),
            MfaError::NotEnrolled => {
                Self::not_found("totp_not_enrolled", "This account has no TOTP enrollment to act on.")
            }
            MfaError::Fault(fault) => fault.into(),
        }
    }
}

impl From<VerifyError> for ApiError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::InvalidToken => Self::unauthorized(
                "invalid_mfa_token",
                "The mfa_token is unknown, used, expired or out of attempts: log in again.",
            ),
            VerifyError::InvalidCode => Self::unauthorized("invalid_mfa_code", INVALID_MFA_CODE),
            VerifyError::Fault(fault) => fault.into(),
        }
    }
}

impl From<PasskeyError> for ApiError {
    fn from(e: PasskeyError) -> Self {
        match e {
            PasskeyError::NotConfigured => Self::not_found(
                "passkeys_not_configured",
                "Passkeys are off: latchkey needs an issuer on a domain name (LATCHKEY_ISSUER, LATCHKEY_WEBAUTHN_RP_ID).",
            ),
            PasskeyError::Reauthenticate(flow) => flow.into(),
            PasskeyError::InvalidChallenge => Self::bad_request(
                "invalid_passkey_challenge",
                "This passkey challenge is unknown, used or expired: start again.",
            ),
            PasskeyError::Refused => Self::unauthorized("invalid_passkey", "The passkey was not accepted."),
            PasskeyError::InvalidName => Self::bad_request(
                "invalid_passkey_name",
                "A passkey name has 1 to 64 characters and no control characters.",
            ),
            PasskeyError::NotFound => Self::not_found("passkey_not_found", "You have no passkey with this id."),
            PasskeyError::Fault(fault) => fault.into(),
        }
    }
}
