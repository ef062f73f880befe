//! Second factors at rest: TOTP secrets (sealed), recovery codes (keyed
//! hashes) and login challenges (SHA-256 of the token). Every use is one
//! conditional write, so of two concurrent uses of a code, a time step or a
//! challenge exactly one succeeds.

use chrono::{DateTime, Utc};
use entity::{mfa_challenge, mfa_totp, recovery_code};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    sea_query::{Expr, ExprTrait, OnConflict},
};
use uuid::Uuid;

pub use mfa_challenge::Model as Challenge;
pub use mfa_totp::Model as Totp;

pub async fn totp(db: &impl ConnectionTrait, user_id: Uuid) -> Result<Option<Totp>, DbErr> {
    mfa_totp::Entity::find_by_id(user_id).one(db).await
}

/// Whether the account has a confirmed TOTP factor.
pub async fn totp_enabled(db: &impl ConnectionTrait, user_id: Uuid) -> Result<bool, DbErr> {
    Ok(totp(db, user_id).await?.is_some_and(|t| t.confirmed_at.is_some()))
}

/// Stores a new unconfirmed secret, replacing an unconfirmed one; `false`
/// (and nothing written) when the account's TOTP is already confirmed.
pub async fn put_pending(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    sealed: Vec<u8>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    use mfa_totp::Column as C;
    let row = mfa_totp::ActiveModel {
        user_id: Set(user_id),
        secret_sealed: Set(sealed),
        created_at: Set(now),
        confirmed_at: Set(None),
        last_step: Set(None),
    };
    let replace_unconfirmed = OnConflict::column(C::UserId)
        .update_columns([C::SecretSealed, C::CreatedAt, C::LastStep])
        .action_and_where(Expr::col((mfa_totp::Entity, C::ConfirmedAt)).is_null())
        .to_owned();
    let written = mfa_totp::Entity::insert(row).on_conflict(replace_unconfirmed).exec_without_returning(db).await?;
    Ok(written == 1)
}

/// Confirms the pending secret with its first accepted step; `false` if
/// there is none (confirmed meanwhile, or replaced).
pub async fn confirm(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    sealed: &[u8],
    step: i64,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let updated = mfa_totp::Entity::update_many()
        .col_expr(mfa_totp::Column::ConfirmedAt, Expr::value(now))
        .col_expr(mfa_totp::Column::LastStep, Expr::value(step))
        .filter(mfa_totp::Column::UserId.eq(user_id))
        .filter(mfa_totp::Column::SecretSealed.eq(sealed.to_vec()))
        .filter(mfa_totp::Column::ConfirmedAt.is_null())
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Accepts time step `step` of the confirmed secret if no later or equal
/// step was accepted before: a code works once.
pub async fn accept_step(db: &impl ConnectionTrait, user_id: Uuid, step: i64) -> Result<bool, DbErr> {
    use mfa_totp::Column as C;
    let updated = mfa_totp::Entity::update_many()
        .col_expr(C::LastStep, Expr::value(step))
        .filter(C::UserId.eq(user_id))
        .filter(C::ConfirmedAt.is_not_null())
        .filter(C::LastStep.is_null().or(C::LastStep.lt(step)))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Removes the TOTP factor, every recovery code and the logins waiting for
/// a code.
pub async fn remove_totp(db: &impl ConnectionTrait, user_id: Uuid) -> Result<bool, DbErr> {
    recovery_code::Entity::delete_many().filter(recovery_code::Column::UserId.eq(user_id)).exec(db).await?;
    drop_challenges(db, user_id).await?;
    Ok(mfa_totp::Entity::delete_by_id(user_id).exec(db).await?.rows_affected == 1)
}

/// Ends every login of the account waiting for its second factor (the
/// password they passed with has changed, or the factor is gone).
pub async fn drop_challenges(db: &impl ConnectionTrait, user_id: Uuid) -> Result<(), DbErr> {
    mfa_challenge::Entity::delete_many().filter(mfa_challenge::Column::UserId.eq(user_id)).exec(db).await?;
    Ok(())
}

/// Takes the account's TOTP row for the rest of the transaction (a no-op
/// write), so two renewals of its recovery codes run one after the other.
pub async fn lock(db: &impl ConnectionTrait, user_id: Uuid) -> Result<(), DbErr> {
    use mfa_totp::Column as C;
    mfa_totp::Entity::update_many()
        .col_expr(C::LastStep, Expr::col(C::LastStep))
        .filter(C::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Whether any account has a confirmed TOTP factor (start-up checks that
/// `mfa.key` is the one they were sealed with).
pub async fn any_confirmed(db: &impl ConnectionTrait) -> Result<bool, DbErr> {
    Ok(mfa_totp::Entity::find().filter(mfa_totp::Column::ConfirmedAt.is_not_null()).count(db).await? > 0)
}

/// Replaces the account's recovery codes with `hashes`.
pub async fn replace_recovery_codes(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    hashes: Vec<Vec<u8>>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    recovery_code::Entity::delete_many().filter(recovery_code::Column::UserId.eq(user_id)).exec(db).await?;
    let rows = hashes.into_iter().map(|hash| recovery_code::ActiveModel {
        hash: Set(hash),
        user_id: Set(user_id),
        created_at: Set(now),
    });
    recovery_code::Entity::insert_many(rows).exec_without_returning(db).await?;
    Ok(())
}

/// Uses up the recovery code with this hash: `true` only for the one caller
/// that deleted it.
pub async fn use_recovery_code(db: &impl ConnectionTrait, user_id: Uuid, hash: &[u8]) -> Result<bool, DbErr> {
    let deleted = recovery_code::Entity::delete_many()
        .filter(recovery_code::Column::UserId.eq(user_id))
        .filter(recovery_code::Column::Hash.eq(hash.to_vec()))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected == 1)
}

pub async fn recovery_codes_left(db: &impl ConnectionTrait, user_id: Uuid) -> Result<u64, DbErr> {
    recovery_code::Entity::find().filter(recovery_code::Column::UserId.eq(user_id)).count(db).await
}

/// A login's second step, to store.
pub struct NewChallenge {
    pub hash: Vec<u8>,
    pub user_id: Uuid,
    pub method: String,
    pub expires_at: DateTime<Utc>,
}

pub async fn create_challenge(db: &impl ConnectionTrait, new: NewChallenge, now: DateTime<Utc>) -> Result<(), DbErr> {
    let row = mfa_challenge::ActiveModel {
        hash: Set(new.hash),
        user_id: Set(new.user_id),
        method: Set(new.method),
        attempts: Set(0),
        created_at: Set(now),
        expires_at: Set(new.expires_at),
        used_at: Set(None),
    };
    mfa_challenge::Entity::insert(row).exec_without_returning(db).await?;
    Ok(())
}

/// Counts one code tried against the live challenge `hash`, before the code
/// is checked; `None` once it is unknown, used, expired or out of attempts
/// (`max_attempts`), so no burst gets more codes checked than that.
pub async fn attempt_challenge(
    db: &impl ConnectionTrait,
    hash: &[u8],
    max_attempts: i32,
    now: DateTime<Utc>,
) -> Result<Option<Challenge>, DbErr> {
    use mfa_challenge::Column as C;
    let counted = mfa_challenge::Entity::update_many()
        .col_expr(C::Attempts, Expr::col(C::Attempts).add(1))
        .filter(C::Hash.eq(hash.to_vec()))
        .filter(C::UsedAt.is_null())
        .filter(C::ExpiresAt.gt(now))
        .filter(C::Attempts.lt(max_attempts))
        .exec(db)
        .await?;
    if counted.rows_affected != 1 {
        return Ok(None);
    }
    mfa_challenge::Entity::find_by_id(hash.to_vec()).one(db).await
}

/// Uses the challenge up: `true` only for the one caller that did.
pub async fn claim_challenge(db: &impl ConnectionTrait, hash: &[u8], now: DateTime<Utc>) -> Result<bool, DbErr> {
    use mfa_challenge::Column as C;
    let claimed = mfa_challenge::Entity::update_many()
        .col_expr(C::UsedAt, Expr::value(now))
        .filter(C::Hash.eq(hash.to_vec()))
        .filter(C::UsedAt.is_null())
        .filter(C::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    Ok(claimed.rows_affected == 1)
}

/// Challenges a day past their expiry (until then an answer can say "expired").
pub async fn purge(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64, DbErr> {
    let cutoff = now - chrono::Duration::days(1);
    let gone =
        mfa_challenge::Entity::delete_many().filter(mfa_challenge::Column::ExpiresAt.lte(cutoff)).exec(db).await?;
    Ok(gone.rows_affected)
}
