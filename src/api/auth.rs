use poem::Request;
use poem_openapi::{ApiResponse, OpenApi, payload::Json};

use super::{
    ApiTags, BearerAuth,
    types::{LoginRequest, RefreshRequest, RevokeRequest, SignupAccepted, SignupRequest, TokenResponse, client_info},
};
use crate::{
    AppState,
    auth::{
        login::{self, LoginError},
        signup::{self, SignupError, SignupInput},
    },
    error::ApiError,
    secret::Password,
    session::{self, RefreshError},
};

pub struct AuthApi;

#[derive(ApiResponse)]
pub enum SignupResponse {
    /// Accepted. The same body for every address, new or already registered.
    #[oai(status = 202)]
    Accepted(Json<SignupAccepted>),
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
    /// account. While `LATCHKEY_REQUIRE_EMAIL_VERIFICATION=false`, the new
    /// account can log in at once. Errors: 422 `invalid_email`,
    /// `invalid_password` (each broken rule listed in `errors`), `invalid_name`.
    #[oai(path = "/signup", method = "post", operation_id = "signup")]
    async fn signup(&self, state: Data<'_>, body: Json<SignupRequest>) -> Result<SignupResponse, ApiError> {
        let Json(body) = body;
        let input = SignupInput { email: body.email, password: Password::new(body.password), name: body.name };
        match signup::signup(&state, input).await {
            Ok(()) => {
                let message = if state.config.require_email_verification {
                    "Check your email to finish signing up."
                } else {
                    "Sign-up received; you can log in once your account is ready."
                };
                Ok(SignupResponse::Accepted(Json(SignupAccepted { message: message.into() })))
            }
            Err(SignupError::Invalid { code, errors }) => {
                Err(ApiError::unprocessable(code, "The request has invalid fields.", errors))
            }
            Err(SignupError::Internal(e)) => Err(ApiError::internal(e)),
        }
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
    async fn refresh(&self, state: Data<'_>, body: Json<RefreshRequest>) -> Result<TokenIssued, ApiError> {
        match session::refresh(&state, &body.0.refresh_token).await {
            Ok(tokens) => Ok(TokenIssued::new(tokens)),
            Err(RefreshError::Invalid) => Err(ApiError::unauthorized(
                "invalid_refresh_token",
                "The refresh token is unknown, expired or revoked.",
            )),
            Err(RefreshError::Reused) => Err(ApiError::unauthorized(
                "refresh_token_reused",
                "This refresh token was already used; the session has been revoked.",
            )),
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
