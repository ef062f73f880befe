use chrono::{DateTime, Utc};
use sea_orm::TransactionTrait;
use uuid::Uuid;

use super::{credentials, flow::FlowError};
use crate::{AppState, secret::Password, session::ClientInfo, store, store::events, token::AccessClaims};

/// A user as the API shows them.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: Uuid,
    pub email: String,
    pub email_verified: bool,
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The owner of an access token, if its session is still live.
pub async fn current(state: &AppState, claims: &AccessClaims) -> anyhow::Result<Option<Account>> {
    let user = store::users::find_with_live_session(&state.db, claims.sub, claims.sid, Utc::now()).await?;
    Ok(user.map(|user| Account {
        id: user.id,
        email: user.email,
        email_verified: user.email_verified_at.is_some(),
        name: user.name,
        created_at: user.created_at,
    }))
}

/// The owner of an access token, or `SessionEnded` when its session is over.
pub async fn live_user(state: &AppState, claims: &AccessClaims) -> Result<entity::user::Model, FlowError> {
    store::users::find_with_live_session(&state.db, claims.sub, claims.sid, Utc::now())
        .await?
        .ok_or(FlowError::SessionEnded)
}

/// How recent a login must be to delete an account that has no password.
const RECENT_LOGIN: chrono::Duration = chrono::Duration::minutes(5);

/// Deletes the caller's account, after checking the password (or, for an
/// account without one, that this session logged in within five minutes).
/// One transaction: the user, their sessions and refresh tokens, link
/// tokens, profile, queued mail and security events go; a single
/// `account_deleted` event stays as the audit record.
pub async fn delete(
    state: &AppState,
    claims: &AccessClaims,
    password: Option<&Password>,
    client: &ClientInfo,
) -> Result<(), FlowError> {
    let user = live_user(state, claims).await?;
    match (&user.password_hash, password) {
        (Some(_), None) => return Err(FlowError::WrongPassword),
        (Some(stored), Some(password)) => {
            if !credentials::check_owner(state, &user.email_key, password, Some(stored.clone())).await? {
                return Err(FlowError::WrongPassword);
            }
        }
        (None, _) => {
            let session = store::sessions::find_live(&state.db, claims.sid, Utc::now()).await?;
            let recent = session.is_some_and(|s| Utc::now() - s.created_at <= RECENT_LOGIN);
            if !recent {
                return Err(FlowError::ReauthenticationRequired);
            }
        }
    }
    let now = Utc::now();
    let txn = state.db.begin().await?;
    events::delete_all(&txn, user.id).await?;
    store::outbox::discard_for(&txn, &user.email_key).await?;
    store::users::delete(&txn, user.id).await?;
    events::record(&txn, user.id, None, events::kind::ACCOUNT_DELETED, client.origin(), now).await?;
    txn.commit().await?;
    tracing::info!(user_id = %user.id, "account deleted");
    Ok(())
}
