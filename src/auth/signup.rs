use chrono::Utc;
use sea_orm::TransactionTrait;

use super::validate;
use crate::{
    AppState,
    error::FieldError,
    secret::Password,
    session::ClientInfo,
    store::{
        events,
        outbox::{self, MailKind},
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
    /// A field broke a rule; `code` names the first field's problem.
    #[error("invalid input")]
    Invalid { code: &'static str, errors: Vec<FieldError> },
    #[error("rate limited")]
    RateLimited(crate::limits::Limited),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sea_orm::DbErr> for SignupError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Internal(e.into())
    }
}

/// Creates the account and queues its mail, in one transaction: a
/// verification link for a new address, a "someone tried to sign up" notice
/// to the owner of a taken one. The caller sees the same outcome either way,
/// and the same work (one argon2 hash, one insert attempt, one queued mail)
/// is done either way.
#[tracing::instrument(skip_all)]
pub async fn signup(state: &AppState, input: SignupInput, client: &ClientInfo) -> Result<(), SignupError> {
    let email =
        validate::email(&input.email).map_err(|e| SignupError::Invalid { code: "invalid_email", errors: vec![e] })?;
    let name = validate::name(input.name.as_deref())
        .map_err(|e| SignupError::Invalid { code: "invalid_name", errors: vec![e] })?;
    let context = [email.email.as_str(), name.as_deref().unwrap_or_default()];
    validate::password(input.password.expose(), &context)
        .map_err(|errors| SignupError::Invalid { code: "invalid_password", errors })?;

    let ip = client.ip.as_deref().unwrap_or("unknown");
    crate::limits::hit(state, crate::limits::Rule::SignupPerIp, ip).await?.map_err(SignupError::RateLimited)?;
    let password_hash = state.hasher.hash(&input.password).await?;
    let now = Utc::now();
    let require_verification = state.config.require_email_verification;
    let verified_at = (!require_verification).then_some(now);
    let email_key = email.key.clone();
    let new =
        NewUser { email: email.email, email_key: email.key, password_hash: Some(password_hash), name, verified_at };
    let txn = state.db.begin().await?;
    let mail = match users::insert(&txn, new, now).await? {
        Inserted::Created(id) => {
            events::record(&txn, id, None, events::kind::SIGNUP, client.origin(), now).await?;
            tracing::info!(user_id = %id, "account created");
            require_verification.then_some(MailKind::VerifyEmail)
        }
        Inserted::EmailTaken => {
            tracing::info!("signup for an address that already has an account");
            Some(MailKind::SignupExisting)
        }
    };
    if let Some(kind) = mail {
        outbox::enqueue(&txn, kind, &email_key, now).await?;
    }
    txn.commit().await?;
    state.mail_queue.notify_one();
    Ok(())
}
