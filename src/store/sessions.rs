use chrono::{DateTime, Utc};
use entity::{refresh_token, session};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, Statement,
    TransactionSession, TransactionTrait, sea_query::Expr,
};
use uuid::Uuid;

use rand_core::RngCore;
use sea_orm::Value;

use super::{
    events,
    status::{self, Slot},
};

/// A session to open, with its first refresh token.
pub struct NewSession {
    pub id: Uuid,
    pub user_id: Uuid,
    pub method: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub token_hash: Vec<u8>,
    pub token_expires_at: DateTime<Utc>,
    /// Bits in a new status list, should one have to be started.
    pub status_list_size: u32,
}

/// The session, its first refresh token and the login event as one
/// statement: a login's writes in one round trip instead of five. Its slot
/// is taken beforehand (`status::allocate`, $12 and $13).
const CREATE_SQL: &str = r#"
WITH new_session AS (
    INSERT INTO sessions (id, user_id, created_at, last_refreshed_at, expires_at, method, ip, user_agent,
                          status_list_id, status_idx)
    VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $12, $13)
), first_token AS (
    INSERT INTO refresh_tokens (hash, session_id, issued_at, expires_at)
    VALUES ($8, $1, $3, $9)
)
INSERT INTO security_events (id, user_id, session_id, kind, ip, user_agent, created_at)
VALUES ($10, $2, $1, $11, $6, $7, $3)
"#;

/// `CREATE_SQL` taking its slot too, so a login is still one statement and
/// one commit: a random index ($13 % size) of the newest open list, if that
/// list is below half full and the index is free. Otherwise nothing at all is
/// written, but the list's count (then one too high: it closes a little
/// early, never late), and the caller takes the slot the long way.
const CREATE_WITH_SLOT_SQL: &str = r#"
WITH list AS (
    UPDATE status_lists SET allocated = allocated + 1
    WHERE id = (SELECT id FROM status_lists WHERE closed_at IS NULL ORDER BY created_at DESC LIMIT 1)
      AND allocated < GREATEST(size / 2, 1)
    RETURNING id, size
), slot AS (
    INSERT INTO status_slots (list_id, idx, session_id, invalid)
    SELECT id, ($12::bigint % size)::integer, $1, false FROM list
    ON CONFLICT DO NOTHING
    RETURNING list_id, idx
), new_session AS (
    INSERT INTO sessions (id, user_id, created_at, last_refreshed_at, expires_at, method, ip, user_agent,
                          status_list_id, status_idx)
    SELECT $1, $2, $3, $3, $4, $5, $6, $7, list_id, idx FROM slot
    RETURNING id, status_list_id, status_idx
), first_token AS (
    INSERT INTO refresh_tokens (hash, session_id, issued_at, expires_at)
    SELECT $8, id, $3, $9 FROM new_session
), event AS (
    INSERT INTO security_events (id, user_id, session_id, kind, ip, user_agent, created_at)
    SELECT $10, $2, id, $11, $6, $7, $3 FROM new_session
)
SELECT status_list_id, status_idx FROM new_session
"#;

/// Opens a session with its status-list slot and records the login, all or
/// nothing: one statement on Postgres, a transaction on SQLite (no
/// data-modifying CTEs there). Returns the slot.
pub async fn create(
    db: &(impl TransactionTrait + ConnectionTrait),
    new: NewSession,
    now: DateTime<Utc>,
) -> Result<Slot, DbErr> {
    let id = new.id;
    if db.get_database_backend() == DbBackend::Postgres {
        // $1–$11, shared by both statements; each adds its slot parameters.
        let common: Vec<Value> = vec![
            id.into(),
            new.user_id.into(),
            now.into(),
            new.expires_at.into(),
            new.method.into(),
            new.ip.into(),
            new.user_agent.into(),
            new.token_hash.into(),
            new.token_expires_at.into(),
            Uuid::now_v7().into(),
            events::kind::LOGIN.into(),
        ];
        let with = |extra: Vec<Value>| common.iter().cloned().chain(extra).collect::<Vec<_>>();
        let random = i64::from(rand_core::OsRng.next_u32());
        let statement =
            Statement::from_sql_and_values(DbBackend::Postgres, CREATE_WITH_SLOT_SQL, with(vec![random.into()]));
        if let Some(row) = db.query_one_raw(statement).await? {
            let (list_id, idx): (Uuid, i32) = (row.try_get_by_index(0)?, row.try_get_by_index(1)?);
            return Ok(Slot { list_id, idx: idx as u32 });
        }
        // No open list, a full one, or the index was taken: the long way.
        let slot = status::allocate(db, id, new.status_list_size, now).await?;
        let values = with(vec![slot.list_id.into(), (slot.idx as i32).into()]);
        let statement = Statement::from_sql_and_values(DbBackend::Postgres, CREATE_SQL, values);
        db.execute_raw(statement).await?;
        return Ok(slot);
    }
    let txn = db.begin().await?;
    let slot = status::allocate(&txn, id, new.status_list_size, now).await?;
    session::Entity::insert(session::ActiveModel {
        id: Set(id),
        user_id: Set(new.user_id),
        created_at: Set(now),
        last_refreshed_at: Set(now),
        expires_at: Set(new.expires_at),
        revoked_at: Set(None),
        method: Set(new.method),
        ip: Set(new.ip.clone()),
        user_agent: Set(new.user_agent.clone()),
        status_list_id: Set(Some(slot.list_id)),
        status_idx: Set(Some(slot.idx as i32)),
    })
    .exec_without_returning(&txn)
    .await?;
    refresh_token::Entity::insert(refresh_token::ActiveModel {
        hash: Set(new.token_hash),
        session_id: Set(id),
        issued_at: Set(now),
        expires_at: Set(new.token_expires_at),
        used_at: Set(None),
        successor_hash: Set(None),
    })
    .exec_without_returning(&txn)
    .await?;
    let origin = events::Origin { ip: new.ip.as_deref(), user_agent: new.user_agent.as_deref() };
    events::record(&txn, new.user_id, Some(id), events::kind::LOGIN, origin, now).await?;
    txn.commit().await?;
    Ok(slot)
}

/// Gives a session opened before status lists its slot, unless a racing
/// refresh did; returns the slot it has now.
pub async fn set_slot(
    db: &impl ConnectionTrait,
    id: Uuid,
    slot: super::status::Slot,
) -> Result<Option<super::status::Slot>, DbErr> {
    session::Entity::update_many()
        .col_expr(session::Column::StatusListId, Expr::value(slot.list_id))
        .col_expr(session::Column::StatusIdx, Expr::value(slot.idx as i32))
        .filter(session::Column::Id.eq(id))
        .filter(session::Column::StatusListId.is_null())
        .exec(db)
        .await?;
    let row = session::Entity::find_by_id(id).one(db).await?;
    Ok(row.and_then(|s| super::rotation::slot(s.status_list_id, s.status_idx)))
}

/// A session that is neither revoked nor past its cap.
pub async fn find_live(
    db: &impl ConnectionTrait,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<session::Model>, DbErr> {
    session::Entity::find_by_id(id)
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(now))
        .one(db)
        .await
}

pub async fn find_token(db: &impl ConnectionTrait, hash: &[u8]) -> Result<Option<refresh_token::Model>, DbErr> {
    refresh_token::Entity::find_by_id(hash.to_vec()).one(db).await
}

/// Revokes a live session of `user_id` and logs why, in one transaction.
/// Returns whether a live session was revoked.
pub async fn revoke(
    db: &impl TransactionTrait,
    session_id: Uuid,
    user_id: Uuid,
    event: &'static str,
    origin: events::Origin<'_>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let txn = db.begin().await?;
    let revoked = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now))
        .filter(session::Column::Id.eq(session_id))
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?
        .rows_affected
        == 1;
    if revoked {
        super::status::invalidate(&txn, user_id, true).await?;
        events::record(&txn, user_id, Some(session_id), event, origin, now).await?;
    }
    txn.commit().await?;
    crate::observe::metrics::sessions_revoked(event, u64::from(revoked));
    Ok(revoked)
}

/// Revokes every live session of `user_id` but `except`, setting their
/// status bits; returns how many. Call it inside the caller's transaction.
pub async fn revoke_all(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    except: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let mut update = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now))
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null());
    if let Some(keep) = except {
        update = update.filter(session::Column::Id.ne(keep));
    }
    let ended = update.exec(db).await?.rows_affected;
    if ended > 0 {
        super::status::invalidate(db, user_id, true).await?;
    }
    Ok(ended)
}

/// The live sessions of `user_id`, newest first.
pub async fn list_live(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<session::Model>, DbErr> {
    session::Entity::find()
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(now))
        .order_by_desc(session::Column::CreatedAt)
        .all(db)
        .await
}
