//! Passwords tried at sign-ups of addresses that already had an account
//! (README "Choices": sign-up then login tells nothing). They are hashed with
//! the account's salt, so one argon2 computation checks a login against the
//! account's password and every attempt at once.

use chrono::{DateTime, Utc};
use entity::{signup_attempt, user};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::Query,
};
use uuid::Uuid;

/// The most attempts remembered per address.
pub const MAX_PER_ACCOUNT: u64 = 100;

pub async fn add(db: &impl ConnectionTrait, user_id: Uuid, hash: String, now: DateTime<Utc>) -> Result<(), DbErr> {
    let row = signup_attempt::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        password_hash: Set(hash),
        created_at: Set(now),
    };
    signup_attempt::Entity::insert(row).exec_without_returning(db).await?;
    Ok(())
}

/// The attempted passwords' hashes for the address `email_key`, oldest
/// first; one query whether or not the address has an account.
pub async fn for_address(db: &impl ConnectionTrait, email_key: &str) -> Result<Vec<String>, DbErr> {
    let account = Query::select()
        .column(user::Column::Id)
        .from(user::Entity)
        .and_where(user::Column::EmailKey.eq(email_key))
        .to_owned();
    signup_attempt::Entity::find()
        .select_only()
        .column(signup_attempt::Column::PasswordHash)
        .filter(signup_attempt::Column::UserId.in_subquery(account))
        .order_by_asc(signup_attempt::Column::Id)
        .limit(MAX_PER_ACCOUNT)
        .into_tuple()
        .all(db)
        .await
}

/// The oldest attempt's hash: the salt every later hash of the account takes.
pub async fn first(db: &impl ConnectionTrait, user_id: Uuid) -> Result<Option<String>, DbErr> {
    signup_attempt::Entity::find()
        .select_only()
        .column(signup_attempt::Column::PasswordHash)
        .filter(signup_attempt::Column::UserId.eq(user_id))
        .order_by_asc(signup_attempt::Column::Id)
        .into_tuple()
        .one(db)
        .await
}

pub async fn count(db: &impl ConnectionTrait, user_id: Uuid) -> Result<u64, DbErr> {
    signup_attempt::Entity::find().filter(signup_attempt::Column::UserId.eq(user_id)).count(db).await
}
