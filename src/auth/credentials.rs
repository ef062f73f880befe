//! Every check of an account's password, whatever endpoint makes it (login,
//! password change, account deletion, email verification), goes through
//! `check`: the attempt is counted against the account's failed-login limit
//! *before* the password is hashed, in the statement that reads the count,
//! so neither a burst nor a second endpoint gets more guesses than the limit.

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::{
    AppState,
    fault::Fault,
    limits::Rule,
    password::Match,
    secret::Password,
    store::{self, signup_attempts},
};

/// Counts a password check of the account at `email_key`, then checks
/// `password` against its own hash (`owner`) and the passwords tried at
/// sign-ups of the address (`attempts`).
pub async fn check(
    state: &AppState,
    email_key: &str,
    password: &Password,
    owner: Option<String>,
    attempts: Vec<String>,
) -> Result<Match, Fault> {
    let rule = Rule::LoginFailuresPerAccount;
    state.limits.hit(&state.db, rule, email_key, state.clock.now()).await?;
    Ok(state.hasher.verify_account(password, owner, attempts).await?)
}

/// Checks the account's own password only (change, deletion, verification).
pub async fn check_owner(
    state: &AppState,
    email_key: &str,
    password: &Password,
    owner: Option<String>,
) -> Result<bool, Fault> {
    Ok(check(state, email_key, password, owner, Vec::new()).await? == Match::Owner)
}

/// The owner proved their password and the operation went ahead: their
/// failures are forgotten, unless the account has a second factor. Its
/// codes count toward the same limit, and only a passing code clears it:
/// otherwise every right password (a password change, a verification)
/// would buy another round of code guesses.
pub async fn succeeded(state: &AppState, user_id: Uuid, email_key: &str) -> Result<(), Fault> {
    if store::mfa::totp_enabled(&state.db, user_id).await? {
        return Ok(());
    }
    forget_failures(state, email_key).await
}

/// Forgets the account's failures, for a caller that knows it has no
/// second factor (a login that just looked).
pub async fn forget_failures(state: &AppState, email_key: &str) -> Result<(), Fault> {
    Ok(state.limits.clear(&state.db, Rule::LoginFailuresPerAccount, email_key).await?)
}

/// Hashes a new password for the account `user_id`. Once passwords have been
/// tried at sign-ups of its address, every hash of the account keeps their
/// salt, so a login stays one argon2 computation (see `check`).
pub async fn hash_new(
    state: &AppState,
    db: &impl ConnectionTrait,
    user_id: Uuid,
    password: &Password,
) -> Result<String, Fault> {
    let like = signup_attempts::first(db, user_id).await?;
    Ok(state.hasher.hash(password, like).await?)
}
