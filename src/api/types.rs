//! Request and response bodies. Entities never appear here.

use chrono::{DateTime, Utc};
use poem::Request;
use poem_openapi::Object;
use uuid::Uuid;

use crate::{
    auth::account,
    session::{ClientInfo, IssuedTokens},
};

/// A new account.
#[derive(Debug, Object)]
pub struct SignupRequest {
    /// The address to sign up with; it is trimmed and its domain lower-cased.
    pub email: String,
    /// 8–128 characters with an upper-case letter, a lower-case letter and a digit.
    pub password: String,
    /// Optional display name, at most 100 characters.
    pub name: Option<String>,
}

/// A request was accepted or done; `message` says what happens next.
#[derive(Debug, Object)]
pub struct Acknowledgement {
    /// For people. Where an answer must not reveal whether an address has an
    /// account, it is the same for every address.
    pub message: String,
}

impl Acknowledgement {
    pub fn new(message: &str) -> Self {
        Self { message: message.into() }
    }
}

/// A token from a mailed verification link.
#[derive(Debug, Object)]
pub struct VerifyEmailRequest {
    /// The `token` query parameter of the link (`lk_ev_…`).
    pub token: String,
}

/// An email address to send a link to.
#[derive(Debug, Object)]
pub struct EmailRequest {
    /// The account's address (any case).
    pub email: String,
}

/// A new password, authorised by a mailed reset link.
#[derive(Debug, Object)]
pub struct ResetPasswordRequest {
    /// The `token` query parameter of the reset link (`lk_pr_…`).
    pub token: String,
    /// 8–128 characters with an upper-case letter, a lower-case letter and a digit.
    pub new_password: String,
}

/// A new password for the signed-in user.
#[derive(Debug, Object)]
pub struct ChangePasswordRequest {
    /// The password in use now.
    pub current_password: String,
    /// 8–128 characters with an upper-case letter, a lower-case letter and a digit.
    pub new_password: String,
}

/// Email and password credentials.
#[derive(Debug, Object)]
pub struct LoginRequest {
    /// The account's email address (any case).
    pub email: String,
    /// The account's password.
    pub password: String,
}

/// A refresh token to exchange.
#[derive(Debug, Object)]
pub struct RefreshRequest {
    /// The refresh token from the last token response (`lk_rt_…`).
    pub refresh_token: String,
}

/// A token to revoke.
#[derive(Debug, Object)]
pub struct RevokeRequest {
    /// The refresh token to revoke (`lk_rt_…`).
    pub token: String,
    /// Optional hint (RFC 7009); only `refresh_token` is meaningful.
    pub token_type_hint: Option<String>,
}

/// A token response (RFC 6749 §5.1).
#[derive(Debug, Object)]
pub struct TokenResponse {
    /// The signed access JWT (`typ` `at+jwt`); send it as `Authorization: Bearer …`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Lifetime of the access token in seconds.
    pub expires_in: u64,
    /// The refresh token (`lk_rt_…`). Single use: each refresh returns a new one.
    pub refresh_token: String,
    /// Lifetime of the refresh token in seconds.
    pub refresh_expires_in: u64,
    /// The session (refresh-token family) these tokens belong to.
    pub session_id: Uuid,
}

impl From<IssuedTokens> for TokenResponse {
    fn from(t: IssuedTokens) -> Self {
        Self {
            access_token: t.access_token,
            token_type: "Bearer".into(),
            expires_in: t.expires_in,
            refresh_token: t.refresh_token,
            refresh_expires_in: t.refresh_expires_in,
            session_id: t.session_id,
        }
    }
}

/// The signed-in user.
#[derive(Debug, Object)]
pub struct User {
    /// The user id; the `sub` of their access tokens.
    pub id: Uuid,
    /// The email address as signed up with (domain lower-cased).
    pub email: String,
    /// Whether the address has been verified.
    pub email_verified: bool,
    /// Display name, when one was given.
    #[oai(skip_serializing_if_is_none)]
    pub name: Option<String>,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}

impl From<account::Account> for User {
    fn from(a: account::Account) -> Self {
        Self { id: a.id, email: a.email, email_verified: a.email_verified, name: a.name, created_at: a.created_at }
    }
}

pub fn client_info(req: &Request) -> ClientInfo {
    ClientInfo {
        ip: req.remote_addr().as_socket_addr().map(|a| a.ip().to_string()),
        user_agent: req
            .headers()
            .get(poem::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(512).collect()),
    }
}
