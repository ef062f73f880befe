use poem::Request;
use poem_openapi::{ApiResponse, OpenApi, payload::Json};

use super::{
    ApiError, ApiTags, BearerAuth, OptionalBearer, client_info,
    types::{
        Acknowledgement, ChangePasswordRequest, CsrfResponse, EmailRequest, EmailVerified, LoginRequest,
        MfaVerifyRequest, RefreshRequest, ResetPasswordRequest, RevokeRequest, SignupRequest, TokenDelivery,
        TokenResponse, VerifyEmailRequest,
    },
};
use crate::{
    AppState,
    auth::{
        login, recovery,
        signup::{self, SignupInput},
        verification,
    },
    browser::cookies,
    mfa::{Code, challenge},
    secret::Password,
    session::{self, RefreshError},
};

#[derive(Default)]
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
pub enum VerifiedResponse {
    /// Verified.
    #[oai(status = 200)]
    Ok(Json<EmailVerified>),
}

#[derive(ApiResponse)]
pub(super) enum TokenIssued {
    /// New tokens. Responses carry `Cache-Control: no-store`.
    #[oai(status = 200)]
    Ok(Json<TokenResponse>, #[oai(header = "Cache-Control")] String),
}

impl TokenIssued {
    pub(super) fn new(body: TokenResponse) -> Self {
        Self::Ok(Json(body), super::no_store())
    }
}

#[derive(ApiResponse)]
pub enum CsrfIssued {
    /// The CSRF token of the session in the refresh cookie.
    #[oai(status = 200)]
    Ok(Json<CsrfResponse>, #[oai(header = "Cache-Control")] String),
}

/// Puts `tokens` where the client asked: all in the body, or the refresh
/// token in the session cookies (and the CSRF token in the body).
pub(super) fn deliver(
    state: &AppState,
    req: &Request,
    tokens: session::IssuedTokens,
    mode: TokenDelivery,
) -> TokenResponse {
    let max_age = tokens.refresh_expires_in;
    let mut body = TokenResponse::from(tokens);
    if mode == TokenDelivery::Cookie
        && let Some(refresh) = body.refresh_token.take()
    {
        let csrf = state.browser.csrf_token(&refresh);
        for cookie in state.browser.session_cookies(&refresh, &csrf, max_age) {
            cookies::set(req, cookie);
        }
        body.csrf_token = Some(csrf);
    }
    body
}

/// Asks the browser to drop the session cookies, if it sent one.
fn clear_session_cookies(state: &AppState, req: &Request) {
    let browser = &state.browser;
    if cookies::get(req, browser.refresh_cookie()).is_some() || cookies::get(req, browser.csrf_cookie()).is_some() {
        for cookie in browser.cleared_cookies() {
            cookies::set(req, cookie);
        }
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
        let input = SignupInput {
            email: body.email.into(),
            password: Password::new(body.password),
            name: body.name.map(Into::into),
        };
        signup::signup(&state, input, &client_info(req)).await?;
        Ok(AcceptedResponse::new(if state.config.server.require_email_verification {
            "Check your email to finish signing up."
        } else {
            "Sign-up received; you can log in once your account is ready."
        }))
    }

    /// Verify an email address
    ///
    /// Uses the token of a mailed verification link; the link works once.
    /// Send the password chosen at sign-up along (`password`) to keep it: the
    /// link proves the mailbox, the password that whoever clicks it is
    /// whoever signed up. Without it the address is still verified, but the
    /// sign-up's password and name are removed and a link to choose a
    /// password is mailed (`password_removed: true`), so a password chosen by
    /// someone who signed up with another person's address never comes to
    /// life. Errors: 400 `token_invalid`, `token_expired`, `token_used`,
    /// `token_superseded` (a newer link was sent); 403
    /// `invalid_current_password` (not the account's password; the link
    /// stays usable); 429 `rate_limited` (password checks count toward the
    /// account's failed-login limit).
    #[oai(path = "/verify-email", method = "post", operation_id = "verifyEmail")]
    async fn verify_email(
        &self,
        state: Data<'_>,
        req: &Request,
        body: Json<VerifyEmailRequest>,
    ) -> Result<VerifiedResponse, ApiError> {
        let Json(body) = body;
        let password = body.password.map(Password::new);
        let verified = verification::verify_email(&state, &body.token, password.as_ref(), &client_info(req)).await?;
        let message = if verified.password_removed {
            "Your email address is verified. The password chosen at sign-up was not confirmed, so it was removed: \
             choose one with the link we just mailed you."
        } else {
            "Your email address is verified. You can log in now."
        };
        Ok(VerifiedResponse::Ok(Json(EmailVerified {
            message: message.into(),
            password_removed: verified.password_removed,
        })))
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
        verification::resend(&state, &body.0.email, &client_info(req)).await?;
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
        recovery::forgot(&state, &body.0.email, &client_info(req)).await?;
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
        recovery::reset(&state, &body.token, &password, client_info(req)).await?;
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
        recovery::change(&state, &auth.0, &current, &new, client_info(req)).await?;
        Ok(DoneResponse::new("Your password was changed and your other sessions signed out."))
    }

    /// Log in with email and password
    ///
    /// Starts a session and returns its first tokens. With `token_delivery:
    /// "cookie"` the refresh token is set in an `HttpOnly` cookie instead of
    /// the body (`Set-Cookie: __Host-lk_refresh=…; Path=/; HttpOnly; Secure;
    /// SameSite=Strict`, plus the readable `__Host-lk_csrf`), and the body
    /// carries `csrf_token`; a browser request from an origin outside
    /// `LATCHKEY_CORS_ORIGINS` is then refused. Errors: 401
    /// `invalid_credentials` (the same for an unknown address and a wrong
    /// password); 403 `email_not_verified`, `invalid_origin`, and
    /// `mfa_required` for an account with a second factor: no tokens, but
    /// `mfa_token` and `methods` in the problem, to continue at `POST
    /// /v1/auth/mfa/verify`.
    #[oai(path = "/login", method = "post", operation_id = "login")]
    async fn login(&self, state: Data<'_>, req: &Request, body: Json<LoginRequest>) -> Result<TokenIssued, ApiError> {
        let mode = body.0.token_delivery.unwrap_or_default();
        if mode == TokenDelivery::Cookie {
            state.browser.check_origin_if_sent(req)?;
        }
        let password = Password::new(body.0.password);
        let tokens = login::login(&state, &body.0.email, &password, client_info(req)).await?;
        Ok(TokenIssued::new(deliver(&state, req, tokens, mode)))
    }

    /// Finish a login with a second factor
    ///
    /// The `mfa_token` of a login's `mfa_required` answer (single use, 5
    /// minutes, 5 codes) and a code from the authenticator app (`code`) or a
    /// recovery code (`recovery_code`); `token_delivery` as at login. Answers
    /// as the login would have: a new session whose tokens' `amr` adds `otp`
    /// and `mfa`. A code works once. Each code tried counts toward the
    /// account's failed-login limit. Errors: 400 `malformed_request` (not
    /// exactly one of `code` and `recovery_code`); 401 `invalid_mfa_code`,
    /// `invalid_mfa_token` (unknown, used, expired or out of attempts: log in
    /// again); 403 `invalid_origin`; 429 `rate_limited`.
    #[oai(path = "/mfa/verify", method = "post", operation_id = "verifyMfa")]
    async fn verify_mfa(
        &self,
        state: Data<'_>,
        req: &Request,
        body: Json<MfaVerifyRequest>,
    ) -> Result<TokenIssued, ApiError> {
        let Json(body) = body;
        let mode = body.token_delivery.unwrap_or_default();
        if mode == TokenDelivery::Cookie {
            state.browser.check_origin_if_sent(req)?;
        }
        let code = match (&body.code, &body.recovery_code) {
            (Some(code), None) => Code::Totp(code),
            (None, Some(code)) => Code::Recovery(code),
            _ => return Err(ApiError::bad_request("malformed_request", "Send exactly one of code and recovery_code.")),
        };
        let tokens = challenge::verify(&state, &body.mfa_token, code, client_info(req)).await?;
        Ok(TokenIssued::new(deliver(&state, req, tokens, mode)))
    }

    /// Exchange a refresh token for new tokens
    ///
    /// The presented token is retired and a new one returned (rotation).
    /// Repeating the same request within the grace window (10 s by default)
    /// returns the same new refresh token. Presenting a retired token after
    /// that revokes the whole session.
    ///
    /// Body mode: `{"refresh_token": "lk_rt_…"}`, tokens in the body. Cookie
    /// mode: `{}` with the refresh cookie, the `X-CSRF-Token` header and an
    /// allowed `Origin` (the browser sends it); the new refresh token goes in
    /// the cookie, the new CSRF token in the cookie and the body. Errors: 401
    /// `invalid_refresh_token`, `refresh_token_reused` (cookie mode: the
    /// cookies are cleared too); 403 `invalid_origin`, `invalid_csrf_token`.
    #[oai(path = "/refresh", method = "post", operation_id = "refresh")]
    async fn refresh(
        &self,
        state: Data<'_>,
        req: &Request,
        body: Json<RefreshRequest>,
    ) -> Result<TokenIssued, ApiError> {
        let (presented, mode) = match body.0.refresh_token {
            Some(token) => (token.into(), TokenDelivery::Body),
            None => {
                let token = cookies::get(req, state.browser.refresh_cookie()).ok_or_else(ApiError::no_refresh_token)?;
                state.browser.check_cookie_request(req, token)?;
                (token.to_string(), TokenDelivery::Cookie)
            }
        };
        let refreshed = session::refresh(&state, &presented, &client_info(req)).await;
        if mode == TokenDelivery::Cookie && matches!(refreshed, Err(RefreshError::Invalid | RefreshError::Reused)) {
            clear_session_cookies(&state, req);
        }
        Ok(TokenIssued::new(deliver(&state, req, refreshed?, mode)))
    }

    /// Log out
    ///
    /// Revokes the current session: its refresh token stops working at once.
    /// The session is the bearer access token's or, without one, the refresh
    /// cookie's (cookie mode: with `X-CSRF-Token` and an allowed `Origin`).
    /// Session cookies sent along are cleared. Errors: 401 `invalid_token`;
    /// 403 `invalid_origin`, `invalid_csrf_token`.
    #[oai(path = "/logout", method = "post", operation_id = "logout")]
    async fn logout(&self, state: Data<'_>, req: &Request, auth: OptionalBearer) -> Result<NoContent, ApiError> {
        match auth {
            OptionalBearer::Bearer(BearerAuth(user)) => session::logout(&state, &user, client_info(req)).await?,
            OptionalBearer::Anonymous => {
                // No valid bearer token (none, or one that expired while the
                // page slept): the refresh cookie names the session.
                let Some(token) = cookies::get(req, state.browser.refresh_cookie()) else {
                    return Err(ApiError::invalid_token());
                };
                state.browser.check_cookie_request(req, token)?;
                let kind = crate::store::events::kind::LOGOUT;
                session::end_by_refresh_token(&state, token, kind, client_info(req)).await?;
            }
        }
        clear_session_cookies(&state, req);
        Ok(NoContent::NoContent)
    }

    /// Get the CSRF token of the cookie session
    ///
    /// For a browser app on another origin, which cannot read latchkey's
    /// CSRF cookie: after a page load, fetch this (with credentials) before
    /// the first cookie-mode refresh. Only origins in `LATCHKEY_CORS_ORIGINS`
    /// (and latchkey's own pages) can read the answer. Errors: 401
    /// `invalid_refresh_token` (no refresh cookie); 403 `invalid_origin`.
    #[oai(path = "/csrf", method = "get", operation_id = "csrfToken")]
    async fn csrf(&self, state: Data<'_>, req: &Request) -> Result<CsrfIssued, ApiError> {
        let token = cookies::get(req, state.browser.refresh_cookie()).ok_or_else(ApiError::no_refresh_token)?;
        state.browser.check_origin_if_sent(req)?;
        let body = CsrfResponse { csrf_token: state.browser.csrf_token(token) };
        Ok(CsrfIssued::Ok(Json(body), super::no_store()))
    }

    /// Revoke a refresh token
    ///
    /// RFC 7009-style: revokes the session the token belongs to. Answers 200
    /// whether or not the token was known.
    #[oai(path = "/revoke", method = "post", operation_id = "revoke")]
    async fn revoke(&self, state: Data<'_>, req: &Request, body: Json<RevokeRequest>) -> Result<Revoked, ApiError> {
        session::revoke(&state, &body.0.token, client_info(req)).await?;
        Ok(Revoked::Ok)
    }
}
