use chrono::Utc;

use super::validate;
use crate::{
    AppState,
    limits::{self, Limited, Rule},
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
    #[error("rate limited")]
    RateLimited(Limited),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sea_orm::DbErr> for LoginError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Internal(e.into())
    }
}

/// Password login. Unknown address and wrong password take the same path,
/// including an argon2 verification, and fail the same way. Two limits apply
/// before any work: attempts per client IP, and failures per address (known
/// or not, so the limit says nothing about accounts either).
#[tracing::instrument(skip_all)]
pub async fn login(
    state: &AppState,
    email: &str,
    password: &Password,
    client: ClientInfo,
) -> Result<IssuedTokens, LoginError> {
    let ip = client.ip.as_deref().unwrap_or("unknown");
    limits::hit(state, Rule::LoginPerIp, ip).await?.map_err(LoginError::RateLimited)?;
    let email = validate::email(email).ok();
    let account = email.as_ref().map_or_else(|| "invalid".to_string(), |e| e.key.clone());
    limits::peek(state, Rule::LoginFailuresPerAccount, &account).await?.map_err(LoginError::RateLimited)?;

    let user = match &email {
        Some(email) => users::find_by_email_key(&state.db, &email.key).await?,
        None => None,
    };
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let known = user.as_ref().map(|u| KnownUser { id: u.id });
    let matches = state.hasher.verify(password, stored).await?;
    let Some(user) = user.filter(|_| matches) else {
        // Counted; it is the next attempt that a full count refuses.
        let _counted = limits::hit(state, Rule::LoginFailuresPerAccount, &account).await?;
        if let Some(user) = known {
            // Recorded off the response path: an unknown address writes no
            // event, and waiting for this one would make a wrong password
            // answer measurably later than an unknown address.
            let (db, now) = (state.db.clone(), Utc::now());
            tokio::spawn(async move {
                let origin = client.origin();
                if let Err(e) = events::record(&db, user.id, None, events::kind::LOGIN_FAILED, origin, now).await {
                    tracing::warn!(error = %e, "could not record a failed login");
                }
            });
        }
        return Err(LoginError::InvalidCredentials);
    };
    limits::clear(state, Rule::LoginFailuresPerAccount, &account).await?;
    // Only after the password matched, so this cannot probe for accounts.
    if state.config.require_email_verification && user.email_verified_at.is_none() {
        return Err(LoginError::EmailNotVerified);
    }
    let mut tokens = session::start(state, &user, "pwd", client).await?;
    tokens.onboarding_required = Some(!profiles::exists(&state.db, user.id).await?);
    Ok(tokens)
}
