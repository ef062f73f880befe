use chrono::{DateTime, Utc};
use entity::user;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, SqlErr};
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

pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find_by_id(id).one(db).await
}
