use chrono::Utc;

use super::validate;
use crate::{
    AppState,
    secret::Password,
    session::{self, ClientInfo, IssuedTokens},
    store::{events, profiles, users},
};

struct KnownUser {
    id: uuid::Uuid,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("email address not verified")]
    EmailNotVerified,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Password login. Unknown address and wrong password take the same path,
/// including an argon2 verification, and fail the same way.
#[tracing::instrument(skip_all)]
pub async fn login(
    state: &AppState,
    email: &str,
    password: &Password,
    client: ClientInfo,
) -> Result<IssuedTokens, LoginError> {
    let user = match validate::email(email) {
        Ok(email) => users::find_by_email_key(&state.db, &email.key).await.map_err(anyhow::Error::from)?,
        Err(_) => None,
    };
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let known = user.as_ref().map(|u| KnownUser { id: u.id });
    let matches = state.hasher.verify(password, stored).await?;
    let Some(user) = user.filter(|_| matches) else {
        if let Some(user) = &known {
            events::record(&state.db, user.id, None, events::kind::LOGIN_FAILED, client.origin(), Utc::now())
                .await
                .map_err(anyhow::Error::from)?;
        }
        return Err(LoginError::InvalidCredentials);
    };
    // Only after the password matched, so this cannot probe for accounts.
    if state.config.require_email_verification && user.email_verified_at.is_none() {
        return Err(LoginError::EmailNotVerified);
    }
    let mut tokens = session::start(state, &user, "pwd", client).await?;
    tokens.onboarding_required = Some(!profiles::exists(&state.db, user.id).await.map_err(anyhow::Error::from)?);
    Ok(tokens)
}
