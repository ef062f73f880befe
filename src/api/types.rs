//! Request and response bodies. Entities never appear here; the values a
//! response shows as they are (a session, a profile, a security event) are
//! the domain's own types, which describe their schema themselves.

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};
use uuid::Uuid;

pub use super::fields::{
    CurrentPassword, DisplayName, EmailAddress, LearningGoals, LoginCode, MfaTokenValue, NewPassword,
    RecoveryCodeValue, RefreshTokenValue, ResetToken, SecondFactorCode, TotpCode, VerifyToken,
};
use crate::{
    auth::{account::EventPage, profile::Experience},
    session::{IssuedTokens, live::Account},
};
pub use crate::{
    auth::{account::SecurityEvent, profile::Profile},
    session::manage::SessionInfo,
};

/// A new account.
#[derive(Debug, Object)]
pub struct SignupRequest {
    /// The address to sign up with: trimmed, the part before `@` ASCII, the
    /// domain in its IDNA form (lower case); at most 254 characters.
    pub email: EmailAddress,
    /// 8–128 characters with an upper-case letter, a lower-case letter and a
    /// digit, no control characters, and not easy to guess (zxcvbn score 3 of
    /// 4, the address and name counted against it).
    pub password: NewPassword,
    /// Optional display name, at most 100 characters, no control characters.
    /// Shown in mail only once the address is verified.
    pub name: Option<DisplayName>,
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

/// A token from a mailed verification link, and the account's password.
#[derive(Debug, Object)]
pub struct VerifyEmailRequest {
    /// The `token` query parameter of the link (`lk_ev_…`).
    pub token: VerifyToken,
    /// The password chosen at sign-up. With it, the account keeps it. Without
    /// it, the address is verified but the password is removed (whoever
    /// signed up may not be whoever owns the address) and a link to choose
    /// one is mailed: `password_removed` is then true.
    pub password: Option<CurrentPassword>,
}

/// The address is verified.
#[derive(Debug, Object)]
pub struct EmailVerified {
    /// For people: what to do next.
    pub message: String,
    /// True when the sign-up's password was removed because the request did
    /// not confirm it; a link to choose a password is on its way.
    pub password_removed: bool,
}

/// An email address to send a link to.
#[derive(Debug, Object)]
pub struct EmailRequest {
    /// The account's address (any case).
    pub email: EmailAddress,
}

/// A new password, authorised by a mailed reset link.
#[derive(Debug, Object)]
pub struct ResetPasswordRequest {
    /// The `token` query parameter of the reset link (`lk_pr_…`).
    pub token: ResetToken,
    /// 8–128 characters with an upper-case letter, a lower-case letter and a digit.
    pub new_password: NewPassword,
}

/// A new password for the signed-in user.
#[derive(Debug, Object)]
pub struct ChangePasswordRequest {
    /// The password in use now. Each check counts toward the account's
    /// failed-login limit.
    pub current_password: CurrentPassword,
    /// 8–128 characters with an upper-case letter, a lower-case letter and a digit.
    pub new_password: NewPassword,
}

/// Where a token response puts the refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Default)]
#[oai(rename_all = "lowercase")]
pub enum TokenDelivery {
    /// In the JSON body, as `refresh_token` (the default).
    #[default]
    Body,
    /// In an `HttpOnly; Secure; SameSite=Strict` cookie (`__Host-lk_refresh`),
    /// with a readable CSRF cookie (`__Host-lk_csrf`) whose value is also the
    /// body's `csrf_token`. For browser apps; see `POST /v1/auth/refresh`.
    Cookie,
}

/// Email and password credentials, and where the refresh token should go:
/// `token_delivery` `body` (the default) or `cookie`.
#[derive(Debug, Object)]
pub struct LoginRequest {
    /// The account's email address (any case).
    pub email: EmailAddress,
    /// The account's password.
    pub password: CurrentPassword,
    // Undocumented here: a described enum field becomes an `allOf` that some
    // client generators cannot read.
    pub token_delivery: Option<TokenDelivery>,
}

/// A refresh token to exchange.
#[derive(Debug, Object)]
pub struct RefreshRequest {
    /// The refresh token from the last token response (`lk_rt_…`). Leave it
    /// out in cookie mode: the refresh cookie is used instead (with the
    /// `X-CSRF-Token` header and an allowed `Origin`).
    pub refresh_token: Option<RefreshTokenValue>,
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
    /// The refresh token (`lk_rt_…`). Single use: each refresh returns a new
    /// one. Absent in cookie mode, where it is in the refresh cookie.
    #[oai(skip_serializing_if_is_none)]
    pub refresh_token: Option<String>,
    /// Lifetime of the refresh token in seconds.
    pub refresh_expires_in: u64,
    /// The session (refresh-token family) these tokens belong to.
    pub session_id: Uuid,
    /// On login: true until the user has saved their onboarding profile
    /// (`PUT /v1/users/me/profile`). Absent on refresh.
    #[oai(skip_serializing_if_is_none)]
    pub onboarding_required: Option<bool>,
    /// Cookie mode only: send it back as `X-CSRF-Token` on cookie-authenticated
    /// requests (refresh, logout). It changes with every refresh; it is also
    /// in the readable CSRF cookie.
    #[oai(skip_serializing_if_is_none)]
    pub csrf_token: Option<String>,
}

/// The CSRF token of the session in the refresh cookie.
#[derive(Debug, Object)]
pub struct CsrfResponse {
    /// Send it as `X-CSRF-Token` with cookie-authenticated requests.
    pub csrf_token: String,
}

impl From<IssuedTokens> for TokenResponse {
    fn from(t: IssuedTokens) -> Self {
        Self {
            access_token: t.access_token,
            token_type: "Bearer".into(),
            expires_in: t.expires_in,
            refresh_token: Some(t.refresh_token),
            refresh_expires_in: t.refresh_expires_in,
            session_id: t.session_id,
            onboarding_required: t.onboarding_required,
            csrf_token: None,
        }
    }
}

/// A login code from a provider sign-in, and where the refresh token should
/// go: `token_delivery` `body` (the default) or `cookie`.
#[derive(Debug, Object)]
pub struct OAuthExchangeRequest {
    /// The `code` query parameter the browser came back with (`lk_oc_…`).
    pub code: LoginCode,
    /// The PKCE verifier of the `code_challenge` the app started the sign-in with.
    pub code_verifier: Option<String>,
    pub token_delivery: Option<TokenDelivery>,
}

/// A token response after a provider sign-in.
#[derive(Debug, Object)]
pub struct OAuthTokenResponse {
    #[oai(flatten)]
    pub tokens: TokenResponse,
    /// True when this sign-in created the account.
    pub is_new_user: bool,
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

impl From<Account> for User {
    fn from(a: Account) -> Self {
        Self { id: a.id, email: a.email, email_verified: a.email_verified, name: a.name, created_at: a.created_at }
    }
}

/// The caller's live sessions, newest first.
#[derive(Debug, Object)]
pub struct SessionList {
    pub sessions: Vec<SessionInfo>,
}

/// How many sessions were ended.
#[derive(Debug, Object)]
pub struct RevokedSessions {
    pub revoked: u64,
}

/// The onboarding profile to save (every field, each time).
#[derive(Debug, Object)]
pub struct ProfileRequest {
    pub robotics_experience: Experience,
    pub ai_ml_experience: Experience,
    /// Plain text, at most 2000 characters once markup is stripped (tags,
    /// comments and entities, however encoded); control characters other
    /// than line breaks and tabs are refused.
    pub learning_goals: LearningGoals,
}

/// Confirms an account deletion.
#[derive(Debug, Object)]
pub struct DeleteAccountRequest {
    /// The account's password. Accounts without one (Google sign-in) send
    /// `{}` instead, within five minutes of logging in.
    pub password: Option<CurrentPassword>,
}

/// A page of security events, newest first.
#[derive(Debug, Object)]
pub struct SecurityEventPage {
    pub events: Vec<SecurityEvent>,
    /// Pass as `before` to get the next (older) page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    pub next_before: Option<Uuid>,
}

impl From<EventPage> for SecurityEventPage {
    fn from(page: EventPage) -> Self {
        Self { events: page.events, next_before: page.next_before }
    }
}

/// Re-authentication for a change to second factors: the password, or `{}`
/// for an account without one within five minutes of logging in.
#[derive(Debug, Object)]
pub struct ReauthenticateRequest {
    pub password: Option<CurrentPassword>,
}

/// The first code from the authenticator app.
#[derive(Debug, Object)]
pub struct TotpConfirmRequest {
    pub code: TotpCode,
}

/// Recovery codes: each works once in place of an authenticator code.
/// Shown this once; only their hashes are kept.
#[derive(Debug, Object)]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

/// A code that passes now: from the authenticator app, or a recovery code.
#[derive(Debug, Object)]
pub struct SecondFactorRequest {
    pub code: SecondFactorCode,
}

/// Turning TOTP off: re-authentication and a second factor.
#[derive(Debug, Object)]
pub struct DisableTotpRequest {
    /// The account's password (accounts without one: `{}` within five minutes of logging in).
    pub password: Option<CurrentPassword>,
    /// A code from the authenticator app, or a recovery code.
    pub code: SecondFactorCode,
}

/// The second step of a login: the `mfa_token` of its `mfa_required`
/// answer and one of `code` or `recovery_code`.
#[derive(Debug, Object)]
pub struct MfaVerifyRequest {
    pub mfa_token: MfaTokenValue,
    /// A code from the authenticator app.
    pub code: Option<TotpCode>,
    /// A recovery code, in place of `code`.
    pub recovery_code: Option<RecoveryCodeValue>,
    // As at login (`body` or `cookie`); undocumented for the reason given there.
    pub token_delivery: Option<TokenDelivery>,
}
