//! The signed-in user's account: their security log, and deleting it all.

use chrono::{DateTime, Utc};
use sea_orm::TransactionTrait;
use uuid::Uuid;

use super::{credentials, flow::FlowError};
use crate::{
    AppState,
    client::ClientInfo,
    fault::Fault,
    secret::Password,
    session::live::LiveUser,
    store::{self, events},
};

/// How recent a login must be to stand in for the password of an account that has none.
const RECENT_LOGIN: chrono::Duration = chrono::Duration::minutes(5);

/// An entry of the caller's security log.
#[derive(Debug, Clone, poem_openapi::Object)]
pub struct SecurityEvent {
    /// Time-ordered: pass the last one as `before` for the next page.
    pub id: Uuid,
    /// `signup`, `login`, `login_failed`, `logout`, `session_revoked`,
    /// `other_sessions_revoked`, `refresh_token_reused`, `email_verified`,
    /// `password_reset`, `password_changed`, `identity_linked`,
    /// `password_removed`, `login_code_reused`, `mfa_enabled`,
    /// `mfa_disabled`, `mfa_failed`, `recovery_code_used`,
    /// `recovery_codes_regenerated`, `passkey_added`, `passkey_removed`.
    pub kind: String,
    pub created_at: DateTime<Utc>,
    #[oai(skip_serializing_if_is_none)]
    pub session_id: Option<Uuid>,
    #[oai(skip_serializing_if_is_none)]
    pub ip: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub user_agent: Option<String>,
}

/// A page of the log, newest first, and the cursor of the next page.
pub struct EventPage {
    pub events: Vec<SecurityEvent>,
    pub next_before: Option<Uuid>,
}

/// The signed-in user's latest `limit` events, older than `before` if given.
pub async fn events(state: &AppState, user: &LiveUser, before: Option<Uuid>, limit: u64) -> Result<EventPage, Fault> {
    // One more than asked tells whether there is a next page.
    let mut rows = events::latest(&state.db, user.user_id(), before, limit + 1).await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next_before = if more { rows.last().map(|e| e.id) } else { None };
    let events = rows
        .into_iter()
        .map(|e| SecurityEvent {
            id: e.id,
            kind: e.kind,
            created_at: e.created_at,
            session_id: e.session_id,
            ip: e.ip,
            user_agent: e.user_agent,
        })
        .collect();
    Ok(EventPage { events, next_before })
}

/// Asks the signed-in user to prove it is them again before a change that
/// guards the account: the password, or for an account without one, a
/// session opened within five minutes. A password check counts toward the
/// account's failed-login limit, as at login.
pub async fn reauthenticate(state: &AppState, user: &LiveUser, password: Option<&Password>) -> Result<(), FlowError> {
    let account = user.account();
    let stored = store::users::find_by_id(&state.db, account.id).await?.and_then(|u| u.password_hash);
    match (stored, password) {
        (Some(_), None) => Err(FlowError::WrongPassword),
        (Some(stored), Some(password)) => {
            if credentials::check_owner(state, &account.email_key, password, Some(stored)).await? {
                Ok(())
            } else {
                Err(FlowError::WrongPassword)
            }
        }
        (None, _) => {
            let now = state.clock.now();
            let session = store::sessions::find_live(&state.db, user.session_id(), now).await?;
            if session.is_none_or(|s| now - s.created_at > RECENT_LOGIN) {
                return Err(FlowError::ReauthenticationRequired);
            }
            Ok(())
        }
    }
}

/// Deletes the signed-in user's account, after checking the password (or,
/// for an account without one, that this session logged in within five
/// minutes). One transaction: the user, their sessions and refresh tokens,
/// link tokens, profile, queued mail and security events go; a single
/// `account_deleted` event stays as the audit record.
pub async fn delete(
    state: &AppState,
    user: &LiveUser,
    password: Option<&Password>,
    client: &ClientInfo,
) -> Result<(), FlowError> {
    reauthenticate(state, user, password).await?;
    let account = user.account();
    let now = state.clock.now();
    let txn = state.db.begin().await?;
    events::delete_all(&txn, account.id).await?;
    store::outbox::discard_for(&txn, &account.email_key).await?;
    // The sessions go with the user; their status bits stay, set.
    store::status::invalidate(&txn, account.id, false).await?;
    store::users::delete(&txn, account.id).await?;
    events::record(&txn, account.id, None, events::kind::ACCOUNT_DELETED, client.origin(), now).await?;
    txn.commit().await?;
    tracing::info!(user_id = %account.id, "account deleted");
    Ok(())
}
