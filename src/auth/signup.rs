use chrono::Utc;

use super::validate;
use crate::{
    AppState,
    error::FieldError,
    secret::Password,
    store::users::{self, Inserted, NewUser},
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
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Creates the account. The outcome is the same whether or not the address
/// already had one, and the same work (one argon2 hash) is done either way.
#[tracing::instrument(skip_all)]
pub async fn signup(state: &AppState, input: SignupInput) -> Result<(), SignupError> {
    let email =
        validate::email(&input.email).map_err(|e| SignupError::Invalid { code: "invalid_email", errors: vec![e] })?;
    validate::password(input.password.expose())
        .map_err(|errors| SignupError::Invalid { code: "invalid_password", errors })?;
    let name = validate::name(input.name.as_deref())
        .map_err(|e| SignupError::Invalid { code: "invalid_name", errors: vec![e] })?;

    let password_hash = state.hasher.hash(&input.password).await?;
    let now = Utc::now();
    let verified_at = (!state.config.require_email_verification).then_some(now);
    let new = NewUser { email: email.email, email_key: email.key, password_hash, name, verified_at };
    match users::insert(&state.db, new, now).await.map_err(anyhow::Error::from)? {
        Inserted::Created(user) => tracing::info!(user_id = %user.id, "account created"),
        Inserted::EmailTaken => tracing::info!("signup for an address that already has an account"),
    }
    Ok(())
}
