//! The security log: append-only, one row per event, never a secret in it.

use chrono::{DateTime, Utc};
use entity::security_event;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

pub use security_event::Model as Event;

/// Where the request behind an event came from.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin<'a> {
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// Appends one entry to a user's security log.
pub async fn record(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    session_id: Option<Uuid>,
    kind: &str,
    origin: Origin<'_>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let row = security_event::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        session_id: Set(session_id),
        kind: Set(kind.into()),
        ip: Set(origin.ip.map(Into::into)),
        user_agent: Set(origin.user_agent.map(Into::into)),
        created_at: Set(now),
    };
    security_event::Entity::insert(row).exec_without_returning(db).await?;
    Ok(())
}

/// The user's latest `limit` events, newest first; with `before`, those
/// older than that event (ids are time-ordered UUIDv7s).
pub async fn latest(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Event>, DbErr> {
    let mut query = security_event::Entity::find().filter(security_event::Column::UserId.eq(user_id));
    if let Some(before) = before {
        query = query.filter(security_event::Column::Id.lt(before));
    }
    query.order_by_desc(security_event::Column::Id).limit(limit).all(db).await
}

/// Forgets every event of a user (their account is being deleted).
pub async fn delete_all(db: &impl ConnectionTrait, user_id: Uuid) -> Result<(), DbErr> {
    security_event::Entity::delete_many().filter(security_event::Column::UserId.eq(user_id)).exec(db).await?;
    Ok(())
}

/// The kinds of event, as stored.
pub mod kind {
    pub const SIGNUP: &str = "signup";
    pub const LOGIN: &str = "login";
    pub const LOGIN_FAILED: &str = "login_failed";
    pub const LOGOUT: &str = "logout";
    pub const SESSION_REVOKED: &str = "session_revoked";
    pub const OTHER_SESSIONS_REVOKED: &str = "other_sessions_revoked";
    pub const REFRESH_TOKEN_REUSED: &str = "refresh_token_reused";
    pub const EMAIL_VERIFIED: &str = "email_verified";
    pub const PASSWORD_RESET: &str = "password_reset";
    pub const PASSWORD_CHANGED: &str = "password_changed";
    pub const ACCOUNT_DELETED: &str = "account_deleted";
    /// A provider account (Google) was linked to this account.
    pub const IDENTITY_LINKED: &str = "identity_linked";
    /// Linking a provider account to a never-verified account removed its password.
    pub const PASSWORD_REMOVED: &str = "password_removed";
    /// A provider login code came back after it had been used; its session was revoked.
    pub const LOGIN_CODE_REUSED: &str = "login_code_reused";
    pub const MFA_ENABLED: &str = "mfa_enabled";
    pub const MFA_DISABLED: &str = "mfa_disabled";
    pub const MFA_FAILED: &str = "mfa_failed";
    pub const RECOVERY_CODE_USED: &str = "recovery_code_used";
    pub const RECOVERY_CODES_REGENERATED: &str = "recovery_codes_regenerated";
    pub const PASSKEY_ADDED: &str = "passkey_added";
    pub const PASSKEY_REMOVED: &str = "passkey_removed";
}
