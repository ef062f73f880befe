//! Sessions: one chain of refresh tokens each. Start, rotate, end; who is
//! signed in (`live`); a user's own sessions (`manage`).

pub mod live;
pub mod manage;
pub mod retry;

use chrono::{DateTime, Duration, Utc};
use entity::user;
use uuid::Uuid;

use self::{
    live::LiveUser,
    retry::{Seen, Verdict},
};
use crate::{
    AppState,
    client::ClientInfo,
    fault::{Fault, carries_fault},
    store::{
        events,
        rotation::{self, Rotation, SessionView},
        sessions::{self, NewSession},
        status,
    },
    token::{RefreshToken, access},
};

/// A fresh access token and the refresh token to use next.
#[derive(Debug)]
pub struct IssuedTokens {
    pub access_token: String,
    pub expires_in: u64,
    pub refresh_token: String,
    pub refresh_expires_in: u64,
    pub session_id: Uuid,
    /// Set on a login: whether the onboarding profile is still to be filled in.
    pub onboarding_required: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("unknown, expired or revoked refresh token")]
    Invalid,
    #[error("refresh token reused; session revoked")]
    Reused,
    #[error(transparent)]
    Fault(Fault),
}

carries_fault!(RefreshError);

/// Opens a session for `user` and issues its first tokens.
pub async fn start(
    state: &AppState,
    user: &user::Model,
    method: &str,
    client: ClientInfo,
) -> Result<IssuedTokens, Fault> {
    start_in(&state.db, state, user, method, client).await
}

/// `start` inside the caller's transaction (`db`), so opening the session
/// commits, or not, with what led to it.
pub async fn start_in(
    db: &(impl sea_orm::TransactionTrait + sea_orm::ConnectionTrait),
    state: &AppState,
    user: &user::Model,
    method: &str,
    client: ClientInfo,
) -> Result<IssuedTokens, Fault> {
    let now = state.clock.now();
    let config = &state.config;
    let token = RefreshToken::generate();
    let session_expires_at = now + Duration::seconds(config.tokens.session_max_age_secs as i64);
    let token_expires_at =
        (now + Duration::seconds(config.tokens.refresh_token_ttl_secs as i64)).min(session_expires_at);
    let session_id = uuid::Uuid::now_v7();
    let new = NewSession {
        id: session_id,
        user_id: user.id,
        method: method.into(),
        ip: client.ip,
        user_agent: client.user_agent,
        expires_at: session_expires_at,
        token_hash: token.hash(),
        token_expires_at,
        status_list_size: config.tokens.status_list_size,
    };
    let status = sessions::create(db, new, now).await?;
    let view = SessionView {
        session_id,
        user_id: user.id,
        method: method.into(),
        email: user.email.clone(),
        email_verified: user.email_verified_at.is_some(),
        status: Some(status),
    };
    Ok(issue(state, &view, &token, token_expires_at, now)?)
}

/// Exchanges a refresh token for a new pair (README "Tokens", rules 1–4).
#[tracing::instrument(skip_all)]
pub async fn refresh(state: &AppState, presented: &str, client: &ClientInfo) -> Result<IssuedTokens, RefreshError> {
    let answer = exchange(state, presented, client).await;
    // Refusals before the token was judged (a rate limit, a fault) are not an outcome.
    let outcome = match &answer {
        Ok((outcome, _)) => Some(*outcome),
        Err(RefreshError::Invalid) => Some("invalid"),
        Err(RefreshError::Reused) => Some("reused"),
        Err(RefreshError::Fault(_)) => None,
    };
    if let Some(outcome) = outcome {
        crate::observe::metrics::refresh(outcome);
    }
    answer.map(|(_, tokens)| tokens)
}

/// `refresh`, with which outcome it was: `ok` or `retried`.
async fn exchange(
    state: &AppState,
    presented: &str,
    client: &ClientInfo,
) -> Result<(&'static str, IssuedTokens), RefreshError> {
    let presented = RefreshToken::parse(presented).ok_or(RefreshError::Invalid)?;
    let successor = presented.successor(&state.refresh_secret);
    let (presented_hash, successor_hash) = (presented.hash(), successor.hash());
    let now = state.clock.now();
    state.limits.hit_refresh(&state.db, &presented_hash, now).await?;
    let rotation = Rotation {
        presented: &presented_hash,
        successor: &successor_hash,
        now,
        successor_expires_at: now + Duration::seconds(state.config.tokens.refresh_token_ttl_secs as i64),
    };
    if let Some(rotated) = rotation::rotate(&state.db, rotation).await? {
        let session = with_slot(state, rotated.session, now).await?;
        return Ok(("ok", issue(state, &session, &successor, rotated.successor_expires_at, now)?));
    }

    // Slow path: tell a retry inside the grace window from a reuse.
    let Some(inspected) = rotation::inspect(&state.db, &presented_hash, now).await? else {
        return Err(RefreshError::Invalid);
    };
    let seen = Seen {
        used_at: inspected.used_at,
        session_live: inspected.session_live,
        successor_matches: inspected.successor_hash.as_deref() == Some(successor_hash.as_slice()),
        successor_used: inspected.successor_used,
        successor_expires_at: inspected.successor_expires_at,
    };
    let grace = Duration::seconds(state.config.tokens.refresh_grace_secs as i64);
    let s = &inspected.session;
    match retry::judge(seen, now, grace) {
        Verdict::Retry { successor_expires_at } => {
            let session = with_slot(state, s.clone(), now).await?;
            Ok(("retried", issue(state, &session, &successor, successor_expires_at, now)?))
        }
        Verdict::Invalid => Err(RefreshError::Invalid),
        Verdict::Reuse => {
            let kind = events::kind::REFRESH_TOKEN_REUSED;
            sessions::revoke(&state.db, s.session_id, s.user_id, kind, client.origin(), now).await?;
            tracing::warn!(session_id = %s.session_id, user_id = %s.user_id, "refresh token reused; session revoked");
            Err(RefreshError::Reused)
        }
    }
}

/// A session opened before status lists takes its slot at its first
/// refresh, so its tokens carry the `status` claim from then on.
async fn with_slot(state: &AppState, mut session: SessionView, now: DateTime<Utc>) -> Result<SessionView, Fault> {
    if session.status.is_none() {
        let size = state.config.tokens.status_list_size;
        let slot = status::allocate(&state.db, session.session_id, size, now).await?;
        session.status = sessions::set_slot(&state.db, session.session_id, slot).await?;
    }
    Ok(session)
}

/// Ends the signed-in user's session.
pub async fn logout(state: &AppState, user: &LiveUser, client: ClientInfo) -> Result<(), Fault> {
    let (kind, now) = (events::kind::LOGOUT, state.clock.now());
    sessions::revoke(&state.db, user.session_id(), user.user_id(), kind, client.origin(), now).await?;
    Ok(())
}

/// RFC 7009-style revocation: ends the session of a refresh token. Unknown
/// tokens are not an error, so the answer tells nothing about a token.
pub async fn revoke(state: &AppState, presented: &str, client: ClientInfo) -> Result<(), Fault> {
    end_by_refresh_token(state, presented, events::kind::SESSION_REVOKED, client).await
}

/// Ends the session `presented` belongs to, if it is live, logging `kind`.
pub async fn end_by_refresh_token(
    state: &AppState,
    presented: &str,
    kind: &'static str,
    client: ClientInfo,
) -> Result<(), Fault> {
    let Some(token) = RefreshToken::parse(presented) else {
        return Ok(());
    };
    let Some(row) = sessions::find_token(&state.db, &token.hash()).await? else {
        return Ok(());
    };
    let now = state.clock.now();
    if let Some(session) = sessions::find_live(&state.db, row.session_id, now).await? {
        sessions::revoke(&state.db, session.id, session.user_id, kind, client.origin(), now).await?;
    }
    Ok(())
}

fn issue(
    state: &AppState,
    session: &SessionView,
    refresh: &RefreshToken,
    refresh_expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> anyhow::Result<IssuedTokens> {
    let subject = access::Subject {
        user_id: session.user_id,
        session_id: session.session_id,
        email: session.email.clone(),
        email_verified: session.email_verified,
        method: session.method.clone(),
        status: session.status,
    };
    let access_token = access::issue(&state.keys.load(), &state.tokens, &subject, now)?;
    Ok(IssuedTokens {
        access_token,
        expires_in: state.tokens.ttl_secs as u64,
        refresh_token: refresh.expose(),
        refresh_expires_in: (refresh_expires_at - now).num_seconds().max(0) as u64,
        session_id: session.session_id,
        onboarding_required: None,
    })
}
