//! Token Status Lists in the database (README "Revocation"). A list is
//! allocated at its full size; each session takes one slot of the newest
//! open list, at a random index (so neighbouring indices say nothing about
//! who logged in when), and its bit is set in the transaction that ends the
//! session. Slots are never reused: a list closes once half its slots are
//! taken (random picks then need two tries at most on average) and is
//! retired when every token that can name it has expired.

use chrono::{DateTime, Utc};
use entity::{session, status_list, status_slot};
use rand_core::RngCore;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, OnConflict, Query},
};
use uuid::Uuid;

/// A session's slot: which list, which bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub list_id: Uuid,
    pub idx: u32,
}

/// A list as the servers see it: what to rebuild, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListVersion {
    pub id: Uuid,
    pub size: u32,
    pub version: i64,
}

/// Takes a free slot of the newest open list for `session_id`, starting a
/// new list of `size` bits when there is none or it is half full. Safe under
/// any number of concurrent callers on any number of instances: the count is
/// reserved by a conditional update, and the slot by a unique key.
pub async fn allocate(
    db: &impl ConnectionTrait,
    session_id: Uuid,
    size: u32,
    now: DateTime<Utc>,
) -> Result<Slot, DbErr> {
    for _ in 0..8 {
        let list = match open_list(db).await? {
            Some(list) => list,
            None => create_list(db, size, now).await?,
        };
        // Half full closes it: a random free index is then found in two tries on average.
        let cap = Ord::max(list.size / 2, 1);
        let reserved = status_list::Entity::update_many()
            .col_expr(status_list::Column::Allocated, Expr::col(status_list::Column::Allocated).add(1))
            .filter(status_list::Column::Id.eq(list.id))
            .filter(status_list::Column::Allocated.lt(cap))
            .exec(db)
            .await?
            .rows_affected
            == 1;
        if !reserved {
            close(db, list.id, now).await?;
            continue;
        }
        for _ in 0..64 {
            let idx = rand_core::OsRng.next_u32() % list.size as u32;
            let row = status_slot::ActiveModel {
                list_id: Set(list.id),
                idx: Set(idx as i32),
                session_id: Set(Some(session_id)),
                invalid: Set(false),
            };
            let taken_here = status_slot::Entity::insert(row)
                .on_conflict(
                    OnConflict::columns([status_slot::Column::ListId, status_slot::Column::Idx])
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(db)
                .await?
                == 1;
            if taken_here {
                return Ok(Slot { list_id: list.id, idx });
            }
        }
    }
    Err(DbErr::Custom("no free status-list slot after many tries".into()))
}

async fn open_list(db: &impl ConnectionTrait) -> Result<Option<status_list::Model>, DbErr> {
    status_list::Entity::find()
        .filter(status_list::Column::ClosedAt.is_null())
        .order_by_desc(status_list::Column::CreatedAt)
        .one(db)
        .await
}

async fn create_list(db: &impl ConnectionTrait, size: u32, now: DateTime<Utc>) -> Result<status_list::Model, DbErr> {
    let row = status_list::Model {
        id: Uuid::new_v4(),
        size: size as i32,
        allocated: 0,
        version: 0,
        created_at: now,
        closed_at: None,
    };
    status_list::Entity::insert(status_list::ActiveModel::from(row.clone())).exec_without_returning(db).await?;
    Ok(row)
}

async fn close(db: &impl ConnectionTrait, id: Uuid, now: DateTime<Utc>) -> Result<(), DbErr> {
    status_list::Entity::update_many()
        .col_expr(status_list::Column::ClosedAt, Expr::value(now))
        .filter(status_list::Column::Id.eq(id))
        .filter(status_list::Column::ClosedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Sets the bits of `user_id`'s sessions: all of them (`revoked_only` false,
/// before the account is deleted), or those that have been revoked. Part of
/// the caller's transaction, so a session never ends without its bit.
pub async fn invalidate(db: &impl ConnectionTrait, user_id: Uuid, revoked_only: bool) -> Result<(), DbErr> {
    let mut sessions = Query::select().column(session::Column::Id).from(session::Entity).to_owned();
    sessions.and_where(session::Column::UserId.eq(user_id));
    if revoked_only {
        sessions.and_where(session::Column::RevokedAt.is_not_null());
    }
    let lists: Vec<Uuid> = status_slot::Entity::find()
        .select_only()
        .column(status_slot::Column::ListId)
        .distinct()
        .filter(status_slot::Column::SessionId.in_subquery(sessions.clone()))
        .filter(status_slot::Column::Invalid.eq(false))
        .into_tuple()
        .all(db)
        .await?;
    if lists.is_empty() {
        return Ok(());
    }
    status_slot::Entity::update_many()
        .col_expr(status_slot::Column::Invalid, Expr::value(true))
        .filter(status_slot::Column::SessionId.in_subquery(sessions))
        .filter(status_slot::Column::Invalid.eq(false))
        .exec(db)
        .await?;
    status_list::Entity::update_many()
        .col_expr(status_list::Column::Version, Expr::col(status_list::Column::Version).add(1))
        .filter(status_list::Column::Id.is_in(lists))
        .exec(db)
        .await?;
    Ok(())
}

/// Every list still served, with its version.
pub async fn versions(db: &impl ConnectionTrait) -> Result<Vec<ListVersion>, DbErr> {
    let rows: Vec<(Uuid, i32, i64)> = status_list::Entity::find()
        .select_only()
        .columns([status_list::Column::Id, status_list::Column::Size, status_list::Column::Version])
        .order_by_asc(status_list::Column::CreatedAt)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|(id, size, version)| ListVersion { id, size: size as u32, version }).collect())
}

/// One list's version, if it is still served.
pub async fn version(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<ListVersion>, DbErr> {
    let row = status_list::Entity::find_by_id(id).one(db).await?;
    Ok(row.map(|r| ListVersion { id: r.id, size: r.size as u32, version: r.version }))
}

/// The indices whose bit is set.
pub async fn invalid_indices(db: &impl ConnectionTrait, list_id: Uuid) -> Result<Vec<u32>, DbErr> {
    let rows: Vec<i32> = status_slot::Entity::find()
        .select_only()
        .column(status_slot::Column::Idx)
        .filter(status_slot::Column::ListId.eq(list_id))
        .filter(status_slot::Column::Invalid.eq(true))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|i| i as u32).collect())
}

/// Retires the lists closed before `closed_before`: by then every session
/// that took a slot of theirs has passed its absolute cap, and its last
/// access token has expired. Their slots go with them.
pub async fn retire(db: &impl ConnectionTrait, closed_before: DateTime<Utc>) -> Result<u64, DbErr> {
    Ok(status_list::Entity::delete_many()
        .filter(status_list::Column::ClosedAt.lt(closed_before))
        .exec(db)
        .await?
        .rows_affected)
}
