//! Fixed-window counters in the database, so every instance shares them.
//! Each check is one atomic statement (an upsert that starts a new window
//! or counts in the current one, returning the result).

use chrono::{DateTime, Utc};
use entity::{rate_limit, refresh_budget, refresh_token};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait, OnConflict, Query, SimpleExpr},
};
use uuid::Uuid;

/// A window's count after a hit, and when the window started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub count: u32,
    pub started: DateTime<Utc>,
}

/// The on-conflict update shared by both tables: a window older than
/// `cutoff` restarts at `now` with a count of 1, otherwise the count grows.
fn count_in_window<C: sea_orm::sea_query::Iden + Copy + 'static>(
    table: impl sea_orm::sea_query::Iden + Copy + 'static,
    key: C,
    window_start: C,
    count: C,
    now: DateTime<Utc>,
    cutoff: DateTime<Utc>,
) -> OnConflict {
    let expired: SimpleExpr = Expr::col((table, window_start)).lte(cutoff);
    OnConflict::column(key)
        .value(count, Expr::case(expired.clone(), 1).finally(Expr::col((table, count)).add(1)))
        .value(window_start, Expr::case(expired, now).finally(Expr::col((table, window_start))))
        .to_owned()
}

/// Counts one hit on `key` in a window of `window`.
pub async fn hit(
    db: &impl ConnectionTrait,
    key: &str,
    now: DateTime<Utc>,
    window: chrono::Duration,
) -> Result<Window, DbErr> {
    use rate_limit::Column as C;
    let row = rate_limit::ActiveModel { key: Set(key.into()), window_start: Set(now), count: Set(1) };
    let on_conflict = count_in_window(rate_limit::Entity, C::Key, C::WindowStart, C::Count, now, now - window);
    let stored = rate_limit::Entity::insert(row).on_conflict(on_conflict).exec_with_returning(db).await?;
    Ok(Window { count: u32::try_from(stored.count).unwrap_or(0), started: stored.window_start })
}

/// Forgets `key` (a successful login clears its account's failures).
pub async fn clear(db: &impl ConnectionTrait, key: &str) -> Result<(), DbErr> {
    rate_limit::Entity::delete_by_id(key).exec(db).await?;
    Ok(())
}

/// Counts one refresh against the session of the refresh token whose hash
/// is `token_hash`, in the same statement that finds the session; `None`
/// when no session has such a token (the rotation will refuse it anyway).
pub async fn hit_refresh(
    db: &impl ConnectionTrait,
    token_hash: &[u8],
    now: DateTime<Utc>,
    window: chrono::Duration,
) -> Result<Option<(Uuid, Window)>, DbErr> {
    use refresh_budget::Column as C;
    let session = Query::select()
        .column(refresh_token::Column::SessionId)
        .expr(Expr::val(now))
        .expr(Expr::val(1))
        .from(refresh_token::Entity)
        .and_where(refresh_token::Column::Hash.eq(token_hash.to_vec()))
        .to_owned();
    let upsert = Query::insert()
        .into_table(refresh_budget::Entity)
        .columns([C::SessionId, C::WindowStart, C::Count])
        .select_from(session)
        .map_err(|e| DbErr::Custom(e.to_string()))?
        .on_conflict(count_in_window(refresh_budget::Entity, C::SessionId, C::WindowStart, C::Count, now, now - window))
        .returning(Query::returning().columns([C::SessionId, C::WindowStart, C::Count]))
        .to_owned();
    let row = db.query_one(&upsert).await?;
    row.map(|row| {
        let id: Uuid = row.try_get("", "session_id")?;
        let started: DateTime<Utc> = row.try_get("", "window_start")?;
        let count: i32 = row.try_get("", "count")?;
        Ok((id, Window { count: u32::try_from(count).unwrap_or(0), started }))
    })
    .transpose()
}

/// Deletes windows that started before `before`.
pub async fn purge(db: &impl ConnectionTrait, before: DateTime<Utc>) -> Result<u64, DbErr> {
    Ok(rate_limit::Entity::delete_many()
        .filter(rate_limit::Column::WindowStart.lt(before))
        .exec(db)
        .await?
        .rows_affected
        + refresh_budget::Entity::delete_many()
            .filter(refresh_budget::Column::WindowStart.lt(before))
            .exec(db)
            .await?
            .rows_affected)
}
