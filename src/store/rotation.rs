//! The refresh hot path. One conditional update decides every race: only the
//! caller that flips `used_at` from NULL gets to insert the successor. On
//! Postgres the whole rotation is one statement (one round trip); SQLite,
//! which has no data-modifying CTEs, runs the same steps in a transaction.

use chrono::{DateTime, Utc};
use entity::{refresh_token, session, user};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, Statement,
    TransactionTrait, sea_query::Expr,
};
use uuid::Uuid;

use super::Db;

/// The session and user behind a successful rotation or a retry.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub method: String,
    pub email: String,
    pub email_verified: bool,
    /// The session's status-list slot (none for a session older than status lists).
    pub status: Option<super::status::Slot>,
}

impl SessionView {
    fn new(session: session::Model, owner: user::Model) -> Self {
        Self {
            session_id: session.id,
            user_id: owner.id,
            method: session.method,
            email: owner.email,
            email_verified: owner.email_verified_at.is_some(),
            status: slot(session.status_list_id, session.status_idx),
        }
    }
}

/// The slot of a session row's two columns.
pub fn slot(list_id: Option<Uuid>, idx: Option<i32>) -> Option<super::status::Slot> {
    match (list_id, idx) {
        (Some(list_id), Some(idx)) => Some(super::status::Slot { list_id, idx: idx as u32 }),
        _ => None,
    }
}

#[derive(Debug)]
pub struct Rotated {
    pub session: SessionView,
    pub successor_expires_at: DateTime<Utc>,
}

/// What the database knows about a presented token that did not rotate.
#[derive(Debug)]
pub struct Inspection {
    pub session: SessionView,
    pub session_live: bool,
    pub used_at: Option<DateTime<Utc>>,
    pub successor_hash: Option<Vec<u8>>,
    pub successor_used: bool,
    pub successor_expires_at: Option<DateTime<Utc>>,
}

/// The rotation request: the presented hash and the successor to install.
pub struct Rotation<'a> {
    pub presented: &'a [u8],
    pub successor: &'a [u8],
    pub now: DateTime<Utc>,
    /// Sliding expiry of the successor, before the session cap is applied.
    pub successor_expires_at: DateTime<Utc>,
}

/// Rotates `presented` → `successor` if `presented` is live and unused.
/// `None` means it did not rotate: unknown, expired, already used, or its session is over.
pub async fn rotate(db: &Db, r: Rotation<'_>) -> Result<Option<Rotated>, DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => rotate_postgres(db, r).await,
        _ => rotate_in_transaction(db, r).await,
    }
}

const ROTATE_SQL: &str = r#"
WITH old AS (
    UPDATE refresh_tokens SET used_at = $2, successor_hash = $3
    WHERE hash = $1 AND used_at IS NULL AND expires_at > $2
    RETURNING session_id
), sess AS (
    UPDATE sessions SET last_refreshed_at = $2
    FROM old
    WHERE sessions.id = old.session_id AND sessions.revoked_at IS NULL AND sessions.expires_at > $2
    RETURNING sessions.id, sessions.user_id, sessions.method, sessions.expires_at,
              sessions.status_list_id, sessions.status_idx
), ins AS (
    INSERT INTO refresh_tokens (hash, session_id, issued_at, expires_at)
    SELECT $3, sess.id, $2, LEAST($4, sess.expires_at) FROM sess
    RETURNING expires_at
)
SELECT sess.id AS session_id, sess.user_id, sess.method, ins.expires_at,
       users.email, users.email_verified_at IS NOT NULL AS email_verified,
       sess.status_list_id, sess.status_idx
FROM sess CROSS JOIN ins JOIN users ON users.id = sess.user_id
"#;

async fn rotate_postgres(db: &Db, r: Rotation<'_>) -> Result<Option<Rotated>, DbErr> {
    let stmt = Statement::from_sql_and_values(
        DbBackend::Postgres,
        ROTATE_SQL,
        [r.presented.to_vec().into(), r.now.into(), r.successor.to_vec().into(), r.successor_expires_at.into()],
    );
    let Some(row) = db.query_one_raw(stmt).await? else {
        return Ok(None);
    };
    Ok(Some(Rotated {
        session: SessionView {
            session_id: row.try_get("", "session_id")?,
            user_id: row.try_get("", "user_id")?,
            method: row.try_get("", "method")?,
            email: row.try_get("", "email")?,
            email_verified: row.try_get("", "email_verified")?,
            status: slot(row.try_get("", "status_list_id")?, row.try_get("", "status_idx")?),
        },
        successor_expires_at: row.try_get("", "expires_at")?,
    }))
}

async fn rotate_in_transaction(db: &Db, r: Rotation<'_>) -> Result<Option<Rotated>, DbErr> {
    let txn = db.begin().await?;
    let won = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::UsedAt, Expr::value(r.now))
        .col_expr(refresh_token::Column::SuccessorHash, Expr::value(r.successor.to_vec()))
        .filter(refresh_token::Column::Hash.eq(r.presented.to_vec()))
        .filter(refresh_token::Column::UsedAt.is_null())
        .filter(refresh_token::Column::ExpiresAt.gt(r.now))
        .exec(&txn)
        .await?
        .rows_affected
        == 1;
    if !won {
        return Ok(None);
    }
    let token = refresh_token::Entity::find_by_id(r.presented.to_vec()).one(&txn).await?;
    let live = match token {
        Some(token) => super::sessions::find_live(&txn, token.session_id, r.now).await?,
        None => None,
    };
    let Some(sess) = live else {
        // The token is spent either way; its session is over.
        txn.commit().await?;
        return Ok(None);
    };
    let Some(owner) = user::Entity::find_by_id(sess.user_id).one(&txn).await? else {
        txn.commit().await?;
        return Ok(None);
    };
    session::Entity::update_many()
        .col_expr(session::Column::LastRefreshedAt, Expr::value(r.now))
        .filter(session::Column::Id.eq(sess.id))
        .exec(&txn)
        .await?;
    let expires_at = r.successor_expires_at.min(sess.expires_at);
    refresh_token::Entity::insert(refresh_token::ActiveModel {
        hash: Set(r.successor.to_vec()),
        session_id: Set(sess.id),
        issued_at: Set(r.now),
        expires_at: Set(expires_at),
        used_at: Set(None),
        successor_hash: Set(None),
    })
    .exec_without_returning(&txn)
    .await?;
    txn.commit().await?;
    Ok(Some(Rotated { session: SessionView::new(sess, owner), successor_expires_at: expires_at }))
}

/// Reads everything needed to tell a retry from a reuse. The slow path only.
pub async fn inspect(
    db: &impl ConnectionTrait,
    presented: &[u8],
    now: DateTime<Utc>,
) -> Result<Option<Inspection>, DbErr> {
    let Some(token) = refresh_token::Entity::find_by_id(presented.to_vec()).one(db).await? else {
        return Ok(None);
    };
    let Some(sess) = session::Entity::find_by_id(token.session_id).one(db).await? else {
        return Ok(None);
    };
    let Some(owner) = user::Entity::find_by_id(sess.user_id).one(db).await? else {
        return Ok(None);
    };
    let successor = match &token.successor_hash {
        Some(hash) => refresh_token::Entity::find_by_id(hash.clone()).one(db).await?,
        None => None,
    };
    Ok(Some(Inspection {
        session_live: sess.revoked_at.is_none() && sess.expires_at > now,
        session: SessionView::new(sess, owner),
        used_at: token.used_at,
        successor_hash: token.successor_hash,
        successor_used: successor.as_ref().is_some_and(|s| s.used_at.is_some()),
        successor_expires_at: successor.map(|s| s.expires_at),
    }))
}
