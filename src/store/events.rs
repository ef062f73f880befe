use chrono::{DateTime, Utc};
use entity::security_event;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait};
use uuid::Uuid;

/// Appends one entry to a user's security log.
pub async fn record(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    session_id: Option<Uuid>,
    kind: &str,
    ip: Option<String>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let row = security_event::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        session_id: Set(session_id),
        kind: Set(kind.into()),
        ip: Set(ip),
        created_at: Set(now),
    };
    security_event::Entity::insert(row).exec_without_returning(db).await?;
    Ok(())
}

/// The kinds of event, as stored.
pub mod kind {
    pub const LOGIN: &str = "login";
    pub const LOGIN_FAILED: &str = "login_failed";
    pub const LOGOUT: &str = "logout";
    pub const SESSION_REVOKED: &str = "session_revoked";
    pub const REFRESH_TOKEN_REUSED: &str = "refresh_token_reused";
    pub const EMAIL_VERIFIED: &str = "email_verified";
    pub const PASSWORD_RESET: &str = "password_reset";
    pub const PASSWORD_CHANGED: &str = "password_changed";
}
