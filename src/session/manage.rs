//! A user's view of their own sessions: list them, end one, end the others.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::live::LiveUser;
use crate::{
    AppState,
    client::ClientInfo,
    fault::Fault,
    store::{events, sessions},
};

/// One of the caller's live sessions.
#[derive(Debug, Clone, poem_openapi::Object)]
pub struct SessionInfo {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    /// The last refresh (the login, if there has been none).
    pub last_refreshed_at: DateTime<Utc>,
    /// The IP address the session was opened from.
    #[oai(skip_serializing_if_is_none)]
    pub ip: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub user_agent: Option<String>,
    /// How the session was opened: its access tokens' `amr`, space-separated:
    /// `pwd` (password) or `google`, followed by `otp mfa` after a second factor.
    pub method: String,
    /// True for the session of the access token making this request.
    pub current: bool,
}

/// The caller's live sessions, newest first.
pub async fn list(state: &AppState, user: &LiveUser) -> Result<Vec<SessionInfo>, Fault> {
    let rows = sessions::list_live(&state.db, user.user_id(), state.clock.now()).await?;
    Ok(rows
        .into_iter()
        .map(|s| SessionInfo {
            current: s.id == user.session_id(),
            id: s.id,
            created_at: s.created_at,
            last_refreshed_at: s.last_refreshed_at,
            ip: s.ip,
            user_agent: s.user_agent,
            method: s.method,
        })
        .collect())
}

/// Ends one of the caller's live sessions (the current one too, like a
/// logout). False when there is no such live session of theirs: another
/// user's session is indistinguishable from none.
pub async fn revoke(state: &AppState, user: &LiveUser, id: Uuid, client: &ClientInfo) -> Result<bool, Fault> {
    let kind = events::kind::SESSION_REVOKED;
    Ok(sessions::revoke(&state.db, id, user.user_id(), kind, client.origin(), state.clock.now()).await?)
}

/// Ends every live session of the caller but the current one; returns how many.
pub async fn revoke_others(state: &AppState, user: &LiveUser, client: &ClientInfo) -> Result<u64, Fault> {
    let now = state.clock.now();
    let txn = sea_orm::TransactionTrait::begin(&state.db).await?;
    let ended = sessions::revoke_all(&txn, user.user_id(), Some(user.session_id()), now).await?;
    if ended > 0 {
        let kind = events::kind::OTHER_SESSIONS_REVOKED;
        events::record(&txn, user.user_id(), Some(user.session_id()), kind, client.origin(), now).await?;
    }
    txn.commit().await?;
    crate::observe::metrics::sessions_revoked(events::kind::OTHER_SESSIONS_REVOKED, ended);
    Ok(ended)
}
