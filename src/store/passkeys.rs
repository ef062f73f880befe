//! Passkeys at rest and the WebAuthn ceremonies under way. A ceremony's
//! state is taken with a delete, so it works once; a sign-in moves the
//! stored counter with a conditional update, so it only ever goes up.

use chrono::{DateTime, Utc};
use entity::{passkey, webauthn_challenge};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    sea_query::{Expr, OnConflict},
};
use uuid::Uuid;

pub use passkey::Model as Passkey;

/// A passkey to store.
pub struct NewPasskey {
    pub user_id: Uuid,
    pub credential_id: Vec<u8>,
    pub credential: String,
    pub name: String,
}

/// Stores a new passkey; `None` if its credential is registered already
/// (decided by the unique index, so two registrations racing cannot both land).
pub async fn insert(db: &impl ConnectionTrait, new: NewPasskey, now: DateTime<Utc>) -> Result<Option<Passkey>, DbErr> {
    let row = Passkey {
        id: Uuid::now_v7(),
        user_id: new.user_id,
        credential_id: new.credential_id,
        credential: new.credential,
        sign_count: 0,
        name: new.name,
        created_at: now,
        last_used_at: None,
    };
    let inserted = passkey::Entity::insert(passkey::ActiveModel::from(row.clone()))
        .on_conflict(OnConflict::column(passkey::Column::CredentialId).do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
    Ok((inserted == 1).then_some(row))
}

pub async fn list(db: &impl ConnectionTrait, user_id: Uuid) -> Result<Vec<Passkey>, DbErr> {
    passkey::Entity::find()
        .filter(passkey::Column::UserId.eq(user_id))
        .order_by_asc(passkey::Column::CreatedAt)
        .all(db)
        .await
}

pub async fn count(db: &impl ConnectionTrait, user_id: Uuid) -> Result<u64, DbErr> {
    passkey::Entity::find().filter(passkey::Column::UserId.eq(user_id)).count(db).await
}

pub async fn find_by_credential(db: &impl ConnectionTrait, credential_id: &[u8]) -> Result<Option<Passkey>, DbErr> {
    passkey::Entity::find().filter(passkey::Column::CredentialId.eq(credential_id.to_vec())).one(db).await
}

/// Deletes the user's passkey `id`; `false` if they have no such passkey.
pub async fn delete(db: &impl ConnectionTrait, user_id: Uuid, id: Uuid) -> Result<bool, DbErr> {
    let gone = passkey::Entity::delete_many()
        .filter(passkey::Column::Id.eq(id))
        .filter(passkey::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(gone.rows_affected == 1)
}

/// Deletes every passkey of the user (an unproven sign-up's go with it).
pub async fn delete_all(db: &impl ConnectionTrait, user_id: Uuid) -> Result<(), DbErr> {
    passkey::Entity::delete_many().filter(passkey::Column::UserId.eq(user_id)).exec(db).await?;
    Ok(())
}

/// Records a sign-in with passkey `id` whose authenticator counted
/// `sign_count`: only if that is above the stored count (or both are 0, an
/// authenticator without a counter), so a replayed or cloned authenticator
/// cannot move it back. `false` when it would have.
pub async fn record_use(
    db: &impl ConnectionTrait,
    id: Uuid,
    credential: String,
    sign_count: i64,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    use passkey::Column as C;
    let goes_up = if sign_count == 0 { C::SignCount.eq(0) } else { C::SignCount.lt(sign_count) };
    let updated = passkey::Entity::update_many()
        .col_expr(C::Credential, Expr::value(credential))
        .col_expr(C::SignCount, Expr::value(sign_count))
        .col_expr(C::LastUsedAt, Expr::value(now))
        .filter(C::Id.eq(id))
        .filter(goes_up)
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// What a ceremony is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Register,
    SignIn,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Register => "register",
            Purpose::SignIn => "sign_in",
        }
    }
}

/// Keeps a ceremony's state; a registration replaces the user's pending one.
pub async fn save_ceremony(
    db: &impl ConnectionTrait,
    purpose: Purpose,
    user_id: Option<Uuid>,
    state: String,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<Uuid, DbErr> {
    use webauthn_challenge::Column as C;
    if let (Purpose::Register, Some(user_id)) = (purpose, user_id) {
        webauthn_challenge::Entity::delete_many()
            .filter(C::Purpose.eq(purpose.as_str()))
            .filter(C::UserId.eq(user_id))
            .exec(db)
            .await?;
    }
    let id = Uuid::now_v7();
    let row = webauthn_challenge::ActiveModel {
        id: Set(id),
        purpose: Set(purpose.as_str().into()),
        user_id: Set(user_id),
        state: Set(state),
        created_at: Set(now),
        expires_at: Set(expires_at),
    };
    webauthn_challenge::Entity::insert(row).exec_without_returning(db).await?;
    Ok(id)
}

/// Takes a live ceremony: found by `id` (a sign-in) or by its user (a
/// registration), deleted so it works once. `None` when unknown, taken
/// already or expired.
pub async fn take_ceremony(
    db: &impl ConnectionTrait,
    purpose: Purpose,
    id: Option<Uuid>,
    user_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<Option<String>, DbErr> {
    use webauthn_challenge::Column as C;
    let mut find = webauthn_challenge::Entity::find().filter(C::Purpose.eq(purpose.as_str()));
    if let Some(id) = id {
        find = find.filter(C::Id.eq(id));
    }
    if let Some(user_id) = user_id {
        find = find.filter(C::UserId.eq(user_id));
    }
    let Some(found) = find.order_by_desc(C::CreatedAt).one(db).await? else {
        return Ok(None);
    };
    let taken = webauthn_challenge::Entity::delete_by_id(found.id).exec(db).await?.rows_affected == 1;
    Ok((taken && found.expires_at > now).then_some(found.state))
}

/// Ceremonies past their expiry.
pub async fn purge(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64, DbErr> {
    let gone = webauthn_challenge::Entity::delete_many()
        .filter(webauthn_challenge::Column::ExpiresAt.lte(now))
        .exec(db)
        .await?;
    Ok(gone.rows_affected)
}
