//! Mailed single-use tokens. Issuing one supersedes the user's older tokens
//! of the same purpose; consuming one is a conditional update, so two
//! concurrent uses cannot both succeed.

use chrono::{DateTime, Utc};
use entity::email_token;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, TransactionTrait, sea_query::Expr,
};
use uuid::Uuid;

use super::Db;

use crate::token::link::{LinkToken, Purpose};

/// Stores `token` for `user_id`, superseding the older live ones.
pub async fn issue(
    db: &Db,
    user_id: Uuid,
    token: &LinkToken,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let purpose = token.purpose().as_str();
    let txn = db.begin().await?;
    supersede_all(&txn, user_id, token.purpose(), now).await?;
    let row = email_token::ActiveModel {
        hash: Set(token.hash()),
        user_id: Set(user_id),
        purpose: Set(purpose.into()),
        created_at: Set(now),
        expires_at: Set(expires_at),
        used_at: Set(None),
        superseded_at: Set(None),
    };
    email_token::Entity::insert(row).exec_without_returning(&txn).await?;
    txn.commit().await
}

/// Why a presented token cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    Unknown,
    Expired,
    Used,
    Superseded,
}

/// Marks `token` used and returns its user, or says why it cannot be used.
/// Run it inside the transaction that acts on the token, so the use and its
/// effect commit together.
pub async fn consume(
    db: &impl ConnectionTrait,
    token: &LinkToken,
    now: DateTime<Utc>,
) -> Result<Result<Uuid, Unusable>, DbErr> {
    let user_id = match check(db, token, now).await? {
        Ok(user_id) => user_id,
        Err(reason) => return Ok(Err(reason)),
    };
    let claimed = email_token::Entity::update_many()
        .col_expr(email_token::Column::UsedAt, Expr::value(now))
        .filter(email_token::Column::Hash.eq(token.hash()))
        .filter(email_token::Column::UsedAt.is_null())
        .filter(email_token::Column::SupersededAt.is_null())
        .exec(db)
        .await?
        .rows_affected;
    Ok(if claimed == 1 { Ok(user_id) } else { Err(Unusable::Used) })
}

/// Checks `token` without using it.
pub async fn check(
    db: &impl ConnectionTrait,
    token: &LinkToken,
    now: DateTime<Utc>,
) -> Result<Result<Uuid, Unusable>, DbErr> {
    let row = email_token::Entity::find_by_id(token.hash())
        .filter(email_token::Column::Purpose.eq(token.purpose().as_str()))
        .one(db)
        .await?;
    Ok(match row {
        None => Err(Unusable::Unknown),
        Some(row) => unusable(&row, now).map_or(Ok(row.user_id), Err),
    })
}

fn unusable(row: &email_token::Model, now: DateTime<Utc>) -> Option<Unusable> {
    if row.used_at.is_some() {
        Some(Unusable::Used)
    } else if row.superseded_at.is_some() {
        Some(Unusable::Superseded)
    } else if row.expires_at <= now {
        Some(Unusable::Expired)
    } else {
        None
    }
}

/// Supersedes every live token of `purpose` for `user_id` (after a password
/// reset, the other reset links die with the old password).
pub async fn supersede_all(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    purpose: Purpose,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    email_token::Entity::update_many()
        .col_expr(email_token::Column::SupersededAt, Expr::value(now))
        .filter(email_token::Column::UserId.eq(user_id))
        .filter(email_token::Column::Purpose.eq(purpose.as_str()))
        .filter(email_token::Column::UsedAt.is_null())
        .filter(email_token::Column::SupersededAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}
