use chrono::{DateTime, Utc};
use entity::{session, user};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    sea_query::{Expr, OnConflict, Query},
};
use uuid::Uuid;

/// A user row to insert.
pub struct NewUser {
    pub email: String,
    pub email_key: String,
    /// `None` for an account that signs in only through a provider.
    pub password_hash: Option<String>,
    pub name: Option<String>,
    pub verified_at: Option<DateTime<Utc>>,
}

pub enum Inserted {
    Created(Uuid),
    EmailTaken,
}

/// Inserts the user unless the address is taken. Safe inside a transaction:
/// a taken address is not an error that would abort it.
pub async fn insert(db: &impl ConnectionTrait, new: NewUser, now: DateTime<Utc>) -> Result<Inserted, DbErr> {
    let id = Uuid::now_v7();
    let row = user::ActiveModel {
        id: Set(id),
        email: Set(new.email),
        email_key: Set(new.email_key),
        email_verified_at: Set(new.verified_at),
        password_hash: Set(new.password_hash),
        name: Set(new.name),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let inserted = user::Entity::insert(row)
        .on_conflict(OnConflict::column(user::Column::EmailKey).do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
    Ok(if inserted == 1 { Inserted::Created(id) } else { Inserted::EmailTaken })
}

/// Deletes the user; sessions, refresh tokens, link tokens and the profile go
/// with it (foreign keys cascade).
pub async fn delete(db: &impl ConnectionTrait, id: Uuid) -> Result<(), DbErr> {
    user::Entity::delete_by_id(id).exec(db).await?;
    Ok(())
}

pub async fn find_by_id(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find_by_id(id).one(db).await
}

/// An update of the user `id` that stamps `updated_at`.
fn stamped(id: Uuid, now: DateTime<Utc>) -> sea_orm::UpdateMany<user::Entity> {
    user::Entity::update_many().col_expr(user::Column::UpdatedAt, Expr::value(now)).filter(user::Column::Id.eq(id))
}

/// Sets the address verified, unless it already was.
pub async fn mark_verified(db: &impl ConnectionTrait, id: Uuid, now: DateTime<Utc>) -> Result<(), DbErr> {
    stamped(id, now)
        .col_expr(user::Column::EmailVerifiedAt, Expr::value(now))
        .filter(user::Column::EmailVerifiedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

pub async fn set_password(db: &impl ConnectionTrait, id: Uuid, hash: String, now: DateTime<Utc>) -> Result<(), DbErr> {
    stamped(id, now).col_expr(user::Column::PasswordHash, Expr::value(hash)).exec(db).await?;
    Ok(())
}

/// Hands an account that was never verified to the person a provider has
/// just vouched for: its password goes (whoever chose it never proved they
/// own the address), the address counts as verified and the display name is
/// the provider's.
pub async fn claim_unverified(
    db: &impl ConnectionTrait,
    id: Uuid,
    name: Option<String>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    stamped(id, now)
        .col_expr(user::Column::PasswordHash, Expr::value(Option::<String>::None))
        .col_expr(user::Column::EmailVerifiedAt, Expr::value(now))
        .col_expr(user::Column::Name, Expr::value(name))
        .filter(user::Column::EmailVerifiedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Removes what an unproven sign-up chose for the account: its password and
/// its name (which a sign-up on someone else's address could have filled
/// with text meant for them).
pub async fn drop_unproven(db: &impl ConnectionTrait, id: Uuid, now: DateTime<Utc>) -> Result<(), DbErr> {
    stamped(id, now)
        .col_expr(user::Column::PasswordHash, Expr::value(Option::<String>::None))
        .col_expr(user::Column::Name, Expr::value(Option::<String>::None))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn find_by_email_key(db: &impl ConnectionTrait, key: &str) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find().filter(user::Column::EmailKey.eq(key)).one(db).await
}

/// The user, provided `session_id` is one of their live sessions; one query.
pub async fn find_with_live_session(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    session_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<user::Model>, DbErr> {
    let live_session_owner = Query::select()
        .column(session::Column::UserId)
        .from(session::Entity)
        .and_where(session::Column::Id.eq(session_id))
        .and_where(session::Column::RevokedAt.is_null())
        .and_where(session::Column::ExpiresAt.gt(now))
        .to_owned();
    user::Entity::find_by_id(user_id).filter(user::Column::Id.in_subquery(live_session_owner)).one(db).await
}
