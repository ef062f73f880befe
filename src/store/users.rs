use chrono::{DateTime, Utc};
use entity::{session, user};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, SqlErr, sea_query::Query,
};
use uuid::Uuid;

/// A user row to insert.
pub struct NewUser {
    pub email: String,
    pub email_key: String,
    pub password_hash: String,
    pub name: Option<String>,
    pub verified_at: Option<DateTime<Utc>>,
}

pub enum Inserted {
    Created(user::Model),
    EmailTaken,
}

pub async fn insert(db: &impl ConnectionTrait, new: NewUser, now: DateTime<Utc>) -> Result<Inserted, DbErr> {
    let row = user::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(new.email),
        email_key: Set(new.email_key),
        email_verified_at: Set(new.verified_at),
        password_hash: Set(Some(new.password_hash)),
        name: Set(new.name),
        created_at: Set(now),
        updated_at: Set(now),
    };
    match user::Entity::insert(row).exec_with_returning(db).await {
        Ok(model) => Ok(Inserted::Created(model)),
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Ok(Inserted::EmailTaken),
        Err(e) => Err(e),
    }
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
