//! Sessions: one chain of refresh tokens each. Start, rotate, end.

pub mod manage;

use chrono::{DateTime, Duration, Utc};
use entity::user;
use uuid::Uuid;

use crate::{
    AppState,
    store::{
        events,
        rotation::{self, Rotation, SessionView},
        sessions::{self, NewSession},
    },
    token::{RefreshToken, access},
};

/// Where a request came from, recorded on sessions and events.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// The client IP as rate limits count it (`unknown` when the peer has none).
    pub fn ip_or_unknown(&self) -> &str {
        self.ip.as_deref().unwrap_or("unknown")
    }

    /// As recorded on security events.
    pub fn origin(&self) -> events::Origin<'_> {
        events::Origin { ip: self.ip.as_deref(), user_agent: self.user_agent.as_deref() }
    }
}

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
    #[error("rate limited")]
    RateLimited(crate::limits::Limited),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sea_orm::DbErr> for RefreshError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Internal(e.into())
    }
}

/// Opens a session for `user` and issues its first tokens.
pub async fn start(
    state: &AppState,
    user: &user::Model,
    method: &str,
    client: ClientInfo,
) -> anyhow::Result<IssuedTokens> {
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
) -> anyhow::Result<IssuedTokens> {
    let now = Utc::now();
    let config = &state.config;
    let token = RefreshToken::generate();
    let session_expires_at = now + Duration::seconds(config.session_max_age_secs as i64);
    let token_expires_at = (now + Duration::seconds(config.refresh_token_ttl_secs as i64)).min(session_expires_at);
    let new = NewSession {
        user_id: user.id,
        method: method.into(),
        ip: client.ip,
        user_agent: client.user_agent,
        expires_at: session_expires_at,
        token_hash: token.hash(),
        token_expires_at,
    };
    let session_id = sessions::create(db, new, now).await?;
    let view = SessionView {
        session_id,
        user_id: user.id,
        method: method.into(),
        email: user.email.clone(),
        email_verified: user.email_verified_at.is_some(),
    };
    issue(state, &view, &token, token_expires_at, now)
}

/// Exchanges a refresh token for a new pair (SPEC §4 rules 1–4).
#[tracing::instrument(skip_all)]
pub async fn refresh(state: &AppState, presented: &str, client: &ClientInfo) -> Result<IssuedTokens, RefreshError> {
    let presented = RefreshToken::parse(presented).ok_or(RefreshError::Invalid)?;
    let successor = presented.successor(&state.refresh_secret);
    let (presented_hash, successor_hash) = (presented.hash(), successor.hash());
    let now = Utc::now();
    state.limits.hit_refresh(&state.db, &presented_hash, now).await?.map_err(RefreshError::RateLimited)?;
    let rotation = Rotation {
        presented: &presented_hash,
        successor: &successor_hash,
        now,
        successor_expires_at: now + Duration::seconds(state.config.refresh_token_ttl_secs as i64),
    };
    if let Some(rotated) = rotation::rotate(&state.db, rotation).await? {
        return Ok(issue(state, &rotated.session, &successor, rotated.successor_expires_at, now)?);
    }

    // Slow path: tell a retry inside the grace window from a reuse.
    let Some(seen) = rotation::inspect(&state.db, &presented_hash, now).await? else {
        return Err(RefreshError::Invalid);
    };
    let Some(used_at) = seen.used_at else {
        return Err(RefreshError::Invalid); // expired, or its session is over
    };
    if !seen.session_live {
        return Err(RefreshError::Invalid);
    }
    let grace = Duration::seconds(state.config.refresh_grace_secs as i64);
    let is_retry = now - used_at <= grace
        && !seen.successor_used
        && seen.successor_hash.as_deref() == Some(successor_hash.as_slice());
    if let (true, Some(expires_at)) = (is_retry, seen.successor_expires_at) {
        return Ok(issue(state, &seen.session, &successor, expires_at, now)?);
    }
    let s = &seen.session;
    let kind = events::kind::REFRESH_TOKEN_REUSED;
    sessions::revoke(&state.db, s.session_id, s.user_id, kind, client.origin(), now).await?;
    tracing::warn!(session_id = %s.session_id, user_id = %s.user_id, "refresh token reused; session revoked");
    Err(RefreshError::Reused)
}

/// Ends the session an access token belongs to.
pub async fn logout(state: &AppState, claims: &access::AccessClaims, client: ClientInfo) -> anyhow::Result<()> {
    sessions::revoke(&state.db, claims.sid, claims.sub, events::kind::LOGOUT, client.origin(), Utc::now()).await?;
    Ok(())
}

/// RFC 7009-style revocation: ends the session of a refresh token. Unknown
/// tokens are not an error, so the answer tells nothing about a token.
pub async fn revoke(state: &AppState, presented: &str, client: ClientInfo) -> anyhow::Result<()> {
    end_by_refresh_token(state, presented, events::kind::SESSION_REVOKED, client).await
}

/// Ends the session `presented` belongs to, if it is live, logging `kind`.
pub async fn end_by_refresh_token(
    state: &AppState,
    presented: &str,
    kind: &str,
    client: ClientInfo,
) -> anyhow::Result<()> {
    let Some(token) = RefreshToken::parse(presented) else {
        return Ok(());
    };
    let Some(row) = sessions::find_token(&state.db, &token.hash()).await? else {
        return Ok(());
    };
    let now = Utc::now();
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
