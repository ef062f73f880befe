use poem::Request;
use poem_openapi::{ApiResponse, OpenApi, payload::Json};

use super::{
    ApiTags, BearerAuth, client_info, flow_error,
    types::{
        Acknowledgement, ChangePasswordRequest, EmailRequest, LoginRequest, RefreshRequest, ResetPasswordRequest,
        RevokeRequest, SignupRequest, TokenResponse, VerifyEmailRequest,
    },
};
use crate::{
    AppState,
    auth::{
        login::{self, LoginError},
        recovery,
        signup::{self, SignupError, SignupInput},
        verification,
    },
    error::ApiError,
    secret::Password,
    session::{self, RefreshError},
};

pub struct AuthApi;

#[derive(ApiResponse)]
pub enum AcceptedResponse {
    /// Accepted. The same status, body and headers for every address, with an account or not.
    #[oai(status = 202)]
    Accepted(Json<Acknowledgement>),
}

impl AcceptedResponse {
    fn new(message: &str) -> Self {
        Self::Accepted(Json(Acknowledgement::new(message)))
    }
}

#[derive(ApiResponse)]
pub enum DoneResponse {
    /// Done.
    #[oai(status = 200)]
    Ok(Json<Acknowledgement>),
}

impl DoneResponse {
    fn new(message: &str) -> Self {
        Self::Ok(Json(Acknowledgement::new(message)))
    }
}

#[derive(ApiResponse)]
pub enum TokenIssued {
    /// New tokens. Responses carry `Cache-Control: no-store`.
    #[oai(status = 200)]
    Ok(Json<TokenResponse>, #[oai(header = "Cache-Control")] String),
}

impl TokenIssued {
    fn new(tokens: session::IssuedTokens) -> Self {
        Self::Ok(Json(tokens.into()), "no-store".into())
    }
}

#[derive(ApiResponse)]
pub enum NoContent {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}

#[derive(ApiResponse)]
pub enum Revoked {
    /// Revoked, or nothing to revoke: the answer is the same either way (RFC 7009).
    #[oai(status = 200)]
    Ok,
}

type Data<'a> = poem::web::Data<&'a AppState>;

#[OpenApi(prefix_path = "/v1/auth", tag = "ApiTags::Auth")]
impl AuthApi {
    /// Create an account
    ///
    /// Answers 202 with the same body whether or not the address already has an
    /// account. A new account gets a verification link by mail (valid 24 h by
    /// default); the owner of an existing one gets a "someone tried to sign up
    /// with your address" notice instead. While
    /// `LATCHKEY_REQUIRE_EMAIL_VERIFICATION=false`, a new account can log in
    /// at once and gets no mail. Errors: 422 `invalid_email`,
    /// `invalid_password` (each broken rule listed in `errors`), `invalid_name`.
    #[oai(path = "/signup", method = "post", operation_id = "signup")]
    async fn signup(
        &self,
        state: Data<'_>,
        req: &Request,
        body: Json<SignupRequest>,
    ) -> Result<AcceptedResponse, ApiError> {
        let Json(body) = body;
        let input = SignupInput { email: body.email, password: Password::new(body.password), name: body.name };
        match signup::signup(&state, input, &client_info(req)).await {
            Ok(()) => {
                let message = if state.config.require_email_verification {
                    "Check your email to finish signing up."
                } else {
                    "Sign-up received; you can log in once your account is ready."
                };
                Ok(AcceptedResponse::new(message))
            }
            Err(SignupError::Invalid { code, errors }) => {
                Err(ApiError::unprocessable(code, "The request has invalid fields.", errors))
            }
            Err(SignupError::RateLimited(limited)) => Err(ApiError::rate_limited(limited)),
            Err(SignupError::Internal(e)) => Err(ApiError::internal(e)),
        }
    }

    /// Verify an email address
    ///
    /// Uses the token of a mailed verification link; the link works once.
    /// Errors: 400 `token_invalid`, `token_expired`, `token_used`,
    /// `token_superseded` (a newer link was sent).
    #[oai(path = "/verify-email", method = "post", operation_id = "verifyEmail")]
    async fn verify_email(&self, state: Data<'_>, body: Json<VerifyEmailRequest>) -> Result<DoneResponse, ApiError> {
        verification::verify_email(&state, &body.0.token).await.map_err(flow_error)?;
        Ok(DoneResponse::new("Your email address is verified. You can log in now."))
    }

    /// Send a new verification link
    ///
    /// Answers 202 whatever the address: a link is mailed only if it belongs
    /// to an account not yet verified. A new link supersedes the older ones.
    /// Errors: 422 `invalid_email` (not an address at all).
    #[oai(path = "/verify-email/resend", method = "post", operation_id = "resendVerificationEmail")]
    async fn resend_verification(
        &self,
        state: Data<'_>,
        req: &Request,
        body: Json<EmailRequest>,
    ) -> Result<AcceptedResponse, ApiError> {
        verification::resend(&state, &body.0.email, &client_info(req)).await.map_err(flow_error)?;
        Ok(AcceptedResponse::new("If this address has an account waiting for verification, a new link is on its way."))
    }

    /// Ask for a password-reset link
    ///
    /// Answers 202 whatever the address: a link (valid 1 h by default) is
    /// mailed only if it belongs to an account. Errors: 422 `invalid_email`.
    #[oai(path = "/password/forgot", method = "post", operation_id = "forgotPassword")]
    async fn forgot_password(
        &self,
        state: Data<'_>,
        req: &Request,
        body: Json<EmailRequest>,
    ) -> Result<AcceptedResponse, ApiError> {
        recovery::forgot(&state, &body.0.email, &client_info(req)).await.map_err(flow_error)?;
        Ok(AcceptedResponse::new("If this address has an account, a link to reset its password is on its way."))
    }

    /// Reset the password with a mailed link
    ///
    /// Sets the new password, ends every session of the account and mails
    /// the owner a notice. It does not log in. Errors: 400 `token_invalid`,
    /// `token_expired`, `token_used`, `token_superseded`; 422 `invalid_password`.
    #[oai(path = "/password/reset", method = "post", operation_id = "resetPassword")]
    async fn reset_password(
        &self,
        state: Data<'_>,
        req: &Request,
        body: Json<ResetPasswordRequest>,
    ) -> Result<DoneResponse, ApiError> {
        let Json(body) = body;
        let password = Password::new(body.new_password);
        recovery::reset(&state, &body.token, &password, client_info(req)).await.map_err(flow_error)?;
        Ok(DoneResponse::new("Your password was reset and every session signed out. Log in with the new password."))
    }

    /// Change the password
    ///
    /// For the signed-in user, who must give the current password. Every other
    /// session ends; this one stays. The owner is told by mail. Errors: 401
    /// `invalid_token`; 403 `invalid_current_password`; 422 `invalid_password`.
    #[oai(path = "/password/change", method = "post", operation_id = "changePassword")]
    async fn change_password(
        &self,
        state: Data<'_>,
        req: &Request,
        auth: BearerAuth,
        body: Json<ChangePasswordRequest>,
    ) -> Result<DoneResponse, ApiError> {
        let Json(body) = body;
        let (current, new) = (Password::new(body.current_password), Password::new(body.new_password));
        recovery::change(&state, &auth.0, &current, &new, client_info(req)).await.map_err(flow_error)?;
        Ok(DoneResponse::new("Your password was changed and your other sessions signed out."))
    }

    /// Log in with email and password
    ///
    /// Starts a session and returns its first tokens. Errors: 401
    /// `invalid_credentials` (the same for an unknown address and a wrong
    /// password), 403 `email_not_verified`.
    #[oai(path = "/login", method = "post", operation_id = "login")]
    async fn login(&self, state: Data<'_>, req: &Request, body: Json<LoginRequest>) -> Result<TokenIssued, ApiError> {
        let password = Password::new(body.0.password);
        match login::login(&state, &body.0.email, &password, client_info(req)).await {
            Ok(tokens) => Ok(TokenIssued::new(tokens)),
            Err(LoginError::InvalidCredentials) => {
                Err(ApiError::unauthorized("invalid_credentials", "The email or password is incorrect."))
            }
            Err(LoginError::EmailNotVerified) => {
                Err(ApiError::forbidden("email_not_verified", "Verify your email address before logging in."))
            }
            Err(LoginError::RateLimited(limited)) => Err(ApiError::rate_limited(limited)),
            Err(LoginError::Internal(e)) => Err(ApiError::internal(e)),
        }
    }

    /// Exchange a refresh token for new tokens
    ///
    /// The presented token is retired and a new one returned (rotation).
    /// Repeating the same request within the grace window (10 s by default)
    /// returns the same new refresh token. Presenting a retired token after
    /// that revokes the whole session. Errors: 401 `invalid_refresh_token`,
    /// `refresh_token_reused`.
    #[oai(path = "/refresh", method = "post", operation_id = "refresh")]
    async fn refresh(
        &self,
        state: Data<'_>,
        req: &Request,
        body: Json<RefreshRequest>,
    ) -> Result<TokenIssued, ApiError> {
        match session::refresh(&state, &body.0.refresh_token, &client_info(req)).await {
            Ok(tokens) => Ok(TokenIssued::new(tokens)),
            Err(RefreshError::Invalid) => Err(ApiError::unauthorized(
                "invalid_refresh_token",
                "The refresh token is unknown, expired or revoked.",
            )),
            Err(RefreshError::Reused) => Err(ApiError::unauthorized(
                "refresh_token_reused",
                "This refresh token was already used; the session has been revoked.",
            )),
            Err(RefreshError::RateLimited(limited)) => Err(ApiError::rate_limited(limited)),
            Err(RefreshError::Internal(e)) => Err(ApiError::internal(e)),
        }
    }

    /// Log out
    ///
    /// Revokes the session of the bearer access token: its refresh token
    /// stops working at once. Errors: 401 `invalid_token`.
    #[oai(path = "/logout", method = "post", operation_id = "logout")]
    async fn logout(&self, state: Data<'_>, req: &Request, auth: BearerAuth) -> Result<NoContent, ApiError> {
        session::logout(&state, &auth.0, client_info(req)).await.map_err(ApiError::internal)?;
        Ok(NoContent::NoContent)
    }

    /// Revoke a refresh token
    ///
    /// RFC 7009-style: revokes the session the token belongs to. Answers 200
    /// whether or not the token was known.
    #[oai(path = "/revoke", method = "post", operation_id = "revoke")]
    async fn revoke(&self, state: Data<'_>, req: &Request, body: Json<RevokeRequest>) -> Result<Revoked, ApiError> {
        session::revoke(&state, &body.0.token, client_info(req)).await.map_err(ApiError::internal)?;
        Ok(Revoked::Ok)
    }
}
