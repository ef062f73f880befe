//! A user's view of their own sessions: list them, end one, end the others.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::ClientInfo;
use crate::{
    AppState,
    auth::{account::live_user, flow::FlowError},
    store::{events, sessions},
    token::AccessClaims,
};

/// One live session, as its owner sees it.
#[derive(Debug, Clone)]
pub struct SessionSummary {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_refreshed_at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub method: String,
    /// The session of the access token making the request.
    pub current: bool,
}

/// The caller's live sessions, newest first.
pub async fn list(state: &AppState, claims: &AccessClaims) -> Result<Vec<SessionSummary>, FlowError> {
    live_user(state, claims).await?;
    let rows = sessions::list_live(&state.db, claims.sub, Utc::now()).await?;
    Ok(rows
        .into_iter()
        .map(|s| SessionSummary {
            current: s.id == claims.sid,
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
pub async fn revoke(state: &AppState, claims: &AccessClaims, id: Uuid, client: &ClientInfo) -> Result<bool, FlowError> {
    live_user(state, claims).await?;
    let kind = events::kind::SESSION_REVOKED;
    Ok(sessions::revoke(&state.db, id, claims.sub, kind, client.origin(), Utc::now()).await?)
}

/// Ends every live session of the caller but the current one; returns how many.
pub async fn revoke_others(state: &AppState, claims: &AccessClaims, client: &ClientInfo) -> Result<u64, FlowError> {
    live_user(state, claims).await?;
    let now = Utc::now();
    let txn = sea_orm::TransactionTrait::begin(&state.db).await?;
    let ended = sessions::revoke_all(&txn, claims.sub, Some(claims.sid), now).await?;
    if ended > 0 {
        let kind = events::kind::OTHER_SESSIONS_REVOKED;
        events::record(&txn, claims.sub, Some(claims.sid), kind, client.origin(), now).await?;
    }
    txn.commit().await?;
    Ok(ended)
}
