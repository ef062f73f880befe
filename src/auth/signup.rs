use chrono::{DateTime, Utc};
use sea_orm::TransactionTrait;

use super::validate::{self, Invalid};
use crate::{
    AppState,
    client::ClientInfo,
    fault::{Fault, carries_fault},
    limits::Rule,
    secret::Password,
    store::{
        events,
        outbox::{self, MailKind},
        signup_attempts,
        users::{self, Inserted, NewUser},
    },
};

pub struct SignupInput {
    pub email: String,
    pub password: Password,
    pub name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SignupError {
    /// A field broke a rule.
    #[error("invalid input")]
    Invalid(Invalid),
    #[error(transparent)]
    Fault(Fault),
}

carries_fault!(SignupError);

/// Creates the account and queues its mail, in one transaction: a
/// verification link for a new address, a "someone tried to sign up" notice
/// to the owner of a taken one. The caller sees the same outcome either way,
/// and the same work (one lookup, one argon2 hash, one insert, one queued
/// mail) is done either way.
///
/// On a taken address the password tried is remembered, hashed with the
/// account's salt, so that a login with it answers as for a new unverified
/// account (`login`): signing up and then logging in tells nothing.
#[tracing::instrument(skip_all)]
pub async fn signup(state: &AppState, input: SignupInput, client: &ClientInfo) -> Result<(), SignupError> {
    let invalid = |e| SignupError::Invalid(e);
    let email = validate::email(&input.email).map_err(|e| invalid(Invalid::email(e)))?;
    let name = validate::name(input.name.as_deref()).map_err(|e| invalid(Invalid::name(e)))?;
    let context = [email.email.as_str(), name.as_deref().unwrap_or_default()];
    validate::password(input.password.expose(), &context).map_err(|e| invalid(Invalid::password(e)))?;

    let now = state.clock.now();
    state.limits.hit(&state.db, Rule::SignupPerIp, client.ip_or_unknown(), now).await?;
    // Every sign-up mails the address: a flood aimed at one inbox stops here.
    state.limits.hit(&state.db, Rule::SignupPerAddress, &email.key, now).await?;

    let mut like = salt_source(&state.db, &email.key).await?;
    // A sign-up racing this one can change the account's salt; one retry
    // hashes again with the salt it now has.
    for _ in 0..2 {
        let hash = state.hasher.hash(&input.password, like.clone()).await?;
        let txn = state.db.begin().await?;
        let new = NewUser {
            email: email.email.clone(),
            email_key: email.key.clone(),
            password_hash: Some(hash.clone()),
            name: name.clone(),
            verified_at: (!state.config.server.require_email_verification).then_some(now),
        };
        let mail = match users::insert(&txn, new, now).await? {
            Inserted::Created(id) => {
                events::record(&txn, id, None, events::kind::SIGNUP, client.origin(), now).await?;
                tracing::info!(user_id = %id, "account created");
                state.config.server.require_email_verification.then_some(MailKind::VerifyEmail)
            }
            Inserted::EmailTaken => {
                let now_like = salt_source(&txn, &email.key).await?;
                if now_like.is_some() && now_like != like {
                    txn.rollback().await?;
                    like = now_like;
                    continue;
                }
                remember_attempt(&txn, &email.key, hash, now).await?;
                tracing::info!("signup for an address that already has an account");
                Some(MailKind::SignupExisting)
            }
        };
        if let Some(kind) = mail {
            outbox::enqueue(&txn, kind, &email.key, now).await?;
        }
        txn.commit().await?;
        state.mail_queue.notify_one();
        return Ok(());
    }
    Err(anyhow::anyhow!("the account at this address changed under two consecutive sign-ups"))?
}

/// The hash whose salt a password tried for `email_key` takes: the
/// account's own, else the first attempt's; `None` for a free address (or a
/// password-less account with no attempt yet), which gets a fresh salt.
async fn salt_source(db: &impl sea_orm::ConnectionTrait, email_key: &str) -> Result<Option<String>, sea_orm::DbErr> {
    let Some(user) = users::find_by_email_key(db, email_key).await? else {
        return Ok(None);
    };
    match user.password_hash {
        Some(hash) => Ok(Some(hash)),
        None => signup_attempts::first(db, user.id).await,
    }
}

/// Keeps the attempt, up to `MAX_PER_ACCOUNT` passwords per address. An
/// account whose own password came from a sign-up nobody has verified counts
/// it as one of them, so a new address and a taken one remember as many.
async fn remember_attempt(
    db: &impl sea_orm::ConnectionTrait,
    email_key: &str,
    hash: String,
    now: DateTime<Utc>,
) -> Result<(), sea_orm::DbErr> {
    let Some(user) = users::find_by_email_key(db, email_key).await? else {
        return Ok(());
    };
    let unproven_own = u64::from(user.email_verified_at.is_none() && user.password_hash.is_some());
    if signup_attempts::count(db, user.id).await? + unproven_own < signup_attempts::MAX_PER_ACCOUNT {
        signup_attempts::add(db, user.id, hash, now).await?;
    }
    Ok(())
}
