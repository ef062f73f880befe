//! The signed-in user's second factors (README "Second factors"): enroll
//! TOTP, confirm it with a first code (which returns the recovery codes),
//! see what is on, renew the recovery codes, remove TOTP. The factors
//! themselves (codes, sealing, the login's second step) are `mfa`.

use sea_orm::TransactionTrait;

use super::{account, flow::FlowError};
use crate::{
    AppState,
    client::ClientInfo,
    fault::{Fault, carries_fault},
    mfa::{Code, Holder, check_code, codes, notify, open_secret, passed, totp},
    secret::Password,
    session::live::LiveUser,
    store::{self, events, outbox::MailKind},
};

#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    /// Re-authentication failed (wrong password, or no recent login).
    #[error(transparent)]
    Reauthenticate(FlowError),
    #[error("the code is wrong, used or expired")]
    InvalidCode,
    #[error("TOTP is already on; remove it first")]
    AlreadyEnabled,
    #[error("no TOTP enrollment to act on")]
    NotEnrolled,
    #[error(transparent)]
    Fault(Fault),
}

carries_fault!(MfaError);

impl From<FlowError> for MfaError {
    fn from(e: FlowError) -> Self {
        match e {
            FlowError::Fault(fault) => Self::Fault(fault),
            other => Self::Reauthenticate(other),
        }
    }
}

fn holder(user: &LiveUser) -> Holder<'_> {
    Holder { user_id: user.user_id(), email_key: &user.account().email_key }
}

/// A new TOTP secret, not yet live: add it to an authenticator app, then
/// confirm it with a first code. Shown this once.
#[derive(Debug, poem_openapi::Object)]
pub struct TotpEnrollment {
    /// The secret, RFC 4648 base32 without padding (160 bits), for typing in.
    pub secret: String,
    /// The `otpauth://totp/…` Key URI authenticator apps scan.
    pub otpauth_uri: String,
    /// The URI as a QR code: an SVG image as a `data:` URL, for an `<img src>`.
    pub qr_code: String,
}

/// Starts a TOTP enrollment (after re-authentication): a new secret,
/// sealed and stored unconfirmed, replacing an unconfirmed one. Login is
/// unchanged until `confirm`.
pub async fn enroll(
    state: &AppState,
    user: &LiveUser,
    password: Option<&Password>,
) -> Result<TotpEnrollment, MfaError> {
    account::reauthenticate(state, user, password).await?;
    let secret = totp::TotpSecret::generate();
    let sealed = state.mfa_keys.seal(user.user_id(), secret.bytes());
    if !store::mfa::put_pending(&state.db, user.user_id(), sealed, state.clock.now()).await? {
        return Err(MfaError::AlreadyEnabled);
    }
    let otpauth_uri = totp::uri(&state.config.tokens.totp_issuer, &user.account().email, &secret);
    let qr_code = totp::qr_svg_data_url(&otpauth_uri)?;
    Ok(TotpEnrollment { secret: secret.base32(), otpauth_uri, qr_code })
}

/// Turns the pending secret on with its first code, and returns the
/// recovery codes: shown this once, stored only as keyed hashes.
pub async fn confirm(
    state: &AppState,
    user: &LiveUser,
    code: &str,
    client: &ClientInfo,
) -> Result<Vec<String>, MfaError> {
    let holder = holder(user);
    let Some(pending) = store::mfa::totp(&state.db, holder.user_id).await?.filter(|t| t.confirmed_at.is_none()) else {
        return Err(MfaError::NotEnrolled);
    };
    let now = state.clock.now();
    state.limits.hit(&state.db, crate::limits::Rule::LoginFailuresPerAccount, holder.email_key, now).await?;
    let step = open_secret(state, holder.user_id, &pending.secret_sealed)
        .and_then(|secret| secret.check(code.trim(), now.timestamp().max(0) as u64));
    let Some(step) = step else {
        notify(state, holder, events::kind::MFA_FAILED, None, client).await?;
        return Err(MfaError::InvalidCode);
    };
    let recovery = codes::new_recovery_codes();
    let txn = state.db.begin().await?;
    if !store::mfa::confirm(&txn, holder.user_id, &pending.secret_sealed, step as i64, now).await? {
        // Replaced or confirmed by a request racing this one.
        txn.rollback().await?;
        return Err(MfaError::InvalidCode);
    }
    store::mfa::replace_recovery_codes(&txn, holder.user_id, hashes(state, &recovery), now).await?;
    txn.commit().await?;
    passed(state, holder.email_key).await?;
    notify(state, holder, events::kind::MFA_ENABLED, Some(MailKind::MfaEnabled), client).await?;
    tracing::info!(user_id = %holder.user_id, "TOTP enabled");
    Ok(recovery)
}

fn hashes(state: &AppState, codes: &[String]) -> Vec<Vec<u8>> {
    codes.iter().filter_map(|c| codes::normalise_recovery_code(c)).map(|c| state.mfa_keys.recovery_hash(&c)).collect()
}

/// What second factors the account has.
#[derive(Debug, poem_openapi::Object)]
pub struct MfaStatus {
    /// Whether TOTP is on (confirmed).
    pub totp: bool,
    pub recovery_codes_left: u64,
    /// Registered passkeys.
    pub passkeys: u64,
}

pub async fn status(state: &AppState, user: &LiveUser) -> Result<MfaStatus, Fault> {
    Ok(MfaStatus {
        totp: store::mfa::totp_enabled(&state.db, user.user_id()).await?,
        recovery_codes_left: store::mfa::recovery_codes_left(&state.db, user.user_id()).await?,
        passkeys: store::passkeys::count(&state.db, user.user_id()).await?,
    })
}

/// A fresh set of recovery codes for a second factor that passes now; the
/// old set stops working.
pub async fn regenerate(
    state: &AppState,
    user: &LiveUser,
    code: &str,
    client: &ClientInfo,
) -> Result<Vec<String>, MfaError> {
    let holder = holder(user);
    if !store::mfa::totp_enabled(&state.db, holder.user_id).await? {
        return Err(MfaError::NotEnrolled);
    }
    if !check_code(state, holder, Code::either(code), client).await? {
        return Err(MfaError::InvalidCode);
    }
    passed(state, holder.email_key).await?;
    let recovery = codes::new_recovery_codes();
    let txn = state.db.begin().await?;
    // Two renewals at once: the second waits, and its set replaces the first's.
    store::mfa::lock(&txn, holder.user_id).await?;
    store::mfa::replace_recovery_codes(&txn, holder.user_id, hashes(state, &recovery), state.clock.now()).await?;
    txn.commit().await?;
    notify(state, holder, events::kind::RECOVERY_CODES_REGENERATED, None, client).await?;
    Ok(recovery)
}

/// Removes TOTP and the recovery codes: re-authentication and a second
/// factor that passes now (a TOTP or a recovery code) are both needed.
pub async fn disable(
    state: &AppState,
    user: &LiveUser,
    password: Option<&Password>,
    code: &str,
    client: &ClientInfo,
) -> Result<(), MfaError> {
    let holder = holder(user);
    if !store::mfa::totp_enabled(&state.db, holder.user_id).await? {
        return Err(MfaError::NotEnrolled);
    }
    account::reauthenticate(state, user, password).await?;
    if !check_code(state, holder, Code::either(code), client).await? {
        return Err(MfaError::InvalidCode);
    }
    passed(state, holder.email_key).await?;
    let txn = state.db.begin().await?;
    store::mfa::remove_totp(&txn, holder.user_id).await?;
    txn.commit().await?;
    notify(state, holder, events::kind::MFA_DISABLED, Some(MailKind::MfaDisabled), client).await?;
    tracing::info!(user_id = %holder.user_id, "TOTP disabled");
    Ok(())
}
