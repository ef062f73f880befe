//! Sign-ins through an OpenID provider: pending states, one-time login codes
//! and the provider accounts linked to users. States and codes are stored
//! only as SHA-256 hashes and taken with a conditional write, so of two
//! concurrent uses exactly one succeeds.

use chrono::{DateTime, Utc};
use entity::{identity, oauth_login_code, oauth_state};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    sea_query::{Expr, OnConflict},
};
use uuid::Uuid;

pub use oauth_state::Model as PendingSignIn;

/// Remembers a started sign-in.
pub async fn save_state(db: &impl ConnectionTrait, pending: PendingSignIn) -> Result<(), DbErr> {
    let row = oauth_state::ActiveModel {
        hash: Set(pending.hash),
        provider: Set(pending.provider),
        redirect_to: Set(pending.redirect_to),
        app_code_challenge: Set(pending.app_code_challenge),
        created_at: Set(pending.created_at),
        expires_at: Set(pending.expires_at),
    };
    oauth_state::Entity::insert(row).exec_without_returning(db).await?;
    Ok(())
}

/// Takes the pending sign-in with this state hash: it is deleted, so a state
/// works once. `None` when unknown, already taken or expired.
pub async fn take_state(
    db: &impl ConnectionTrait,
    provider: &str,
    hash: &[u8],
    now: DateTime<Utc>,
) -> Result<Option<PendingSignIn>, DbErr> {
    let Some(found) = oauth_state::Entity::find_by_id(hash.to_vec())
        .filter(oauth_state::Column::Provider.eq(provider))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let taken = oauth_state::Entity::delete_by_id(hash.to_vec()).exec(db).await?.rows_affected == 1;
    Ok((taken && found.expires_at > now).then_some(found))
}

/// A login code to store.
pub struct NewLoginCode {
    pub hash: Vec<u8>,
    pub user_id: Uuid,
    pub provider: String,
    pub is_new_user: bool,
    pub expires_at: DateTime<Utc>,
    pub code_challenge: Option<String>,
}

pub async fn save_code(db: &impl ConnectionTrait, code: NewLoginCode, now: DateTime<Utc>) -> Result<(), DbErr> {
    let row = oauth_login_code::ActiveModel {
        hash: Set(code.hash),
        user_id: Set(code.user_id),
        provider: Set(code.provider),
        is_new_user: Set(code.is_new_user),
        created_at: Set(now),
        expires_at: Set(code.expires_at),
        used_at: Set(None),
        session_id: Set(None),
        code_challenge: Set(code.code_challenge),
    };
    oauth_login_code::Entity::insert(row).exec_without_returning(db).await?;
    Ok(())
}

/// What presenting a login code found.
pub enum CodeUse {
    /// Claimed now; it cannot be used again.
    Claimed(oauth_login_code::Model),
    /// Presented before: a replay. Carries the session the first use opened.
    Replayed(oauth_login_code::Model),
    Expired,
    Unknown,
    /// `accept` refused it; it stays unused.
    NotBound,
}

/// Claims a login code, if `accept` agrees it belongs to the caller.
pub async fn claim_code(
    db: &impl ConnectionTrait,
    hash: &[u8],
    now: DateTime<Utc>,
    accept: impl FnOnce(&oauth_login_code::Model) -> bool,
) -> Result<CodeUse, DbErr> {
    let Some(found) = oauth_login_code::Entity::find_by_id(hash.to_vec()).one(db).await? else {
        return Ok(CodeUse::Unknown);
    };
    if found.used_at.is_some() {
        return Ok(CodeUse::Replayed(found));
    }
    if found.expires_at <= now {
        return Ok(CodeUse::Expired);
    }
    if !accept(&found) {
        return Ok(CodeUse::NotBound);
    }
    let claimed = oauth_login_code::Entity::update_many()
        .col_expr(oauth_login_code::Column::UsedAt, Expr::value(now))
        .filter(oauth_login_code::Column::Hash.eq(hash.to_vec()))
        .filter(oauth_login_code::Column::UsedAt.is_null())
        .exec(db)
        .await?
        .rows_affected
        == 1;
    Ok(if claimed { CodeUse::Claimed(found) } else { CodeUse::Replayed(found) })
}

/// Records the session a claimed code opened, so a replay can end it.
pub async fn set_code_session(db: &impl ConnectionTrait, hash: &[u8], session_id: Uuid) -> Result<(), DbErr> {
    oauth_login_code::Entity::update_many()
        .col_expr(oauth_login_code::Column::SessionId, Expr::value(session_id))
        .filter(oauth_login_code::Column::Hash.eq(hash.to_vec()))
        .exec(db)
        .await?;
    Ok(())
}

/// A login code as stored.
pub async fn find_code(db: &impl ConnectionTrait, hash: &[u8]) -> Result<Option<oauth_login_code::Model>, DbErr> {
    oauth_login_code::Entity::find_by_id(hash.to_vec()).one(db).await
}

pub async fn find_identity(
    db: &impl ConnectionTrait,
    provider: &str,
    subject: &str,
) -> Result<Option<identity::Model>, DbErr> {
    identity::Entity::find_by_id((provider.to_string(), subject.to_string())).one(db).await
}

/// Links a provider account to a user; `false` if it was linked meanwhile.
pub async fn link(
    db: &impl ConnectionTrait,
    provider: &str,
    subject: &str,
    user_id: Uuid,
    email: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let row = identity::ActiveModel {
        provider: Set(provider.into()),
        subject: Set(subject.into()),
        user_id: Set(user_id),
        email: Set(email.into()),
        created_at: Set(now),
        last_login_at: Set(now),
    };
    let inserted = identity::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([identity::Column::Provider, identity::Column::Subject]).do_nothing().to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(inserted == 1)
}

/// Notes a login through an existing link, and the address the provider gave this time.
pub async fn touch_identity(
    db: &impl ConnectionTrait,
    provider: &str,
    subject: &str,
    email: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    identity::Entity::update_many()
        .col_expr(identity::Column::Email, Expr::value(email))
        .col_expr(identity::Column::LastLoginAt, Expr::value(now))
        .filter(identity::Column::Provider.eq(provider))
        .filter(identity::Column::Subject.eq(subject))
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes states and codes nothing can use any more.
pub async fn purge(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64, DbErr> {
    let states = oauth_state::Entity::delete_many()
        .filter(oauth_state::Column::ExpiresAt.lte(now))
        .exec(db)
        .await?
        .rows_affected;
    // Used codes stay until their session could no longer matter for replay
    // detection: a day after they expired.
    let codes = oauth_login_code::Entity::delete_many()
        .filter(oauth_login_code::Column::ExpiresAt.lte(now - chrono::Duration::days(1)))
        .exec(db)
        .await?
        .rows_affected;
    Ok(states + codes)
}
