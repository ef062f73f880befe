//! Removes rows nothing can use any more: expired refresh tokens, tokens of
//! revoked sessions, sessions past their absolute cap, and mailed link tokens
//! a day after they expired (until then a late click is told "expired"),
//! provider sign-ins that were never finished, second-factor challenges a
//! day after they expired, and passkey ceremonies once they expired.

use chrono::{DateTime, Utc};
use entity::{email_token, refresh_token, session};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, sea_query::Query};

/// Deletes what has expired; returns the number of rows removed.
pub async fn purge_expired(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64, DbErr> {
    let revoked_sessions = Query::select()
        .column(session::Column::Id)
        .from(session::Entity)
        .and_where(session::Column::RevokedAt.is_not_null())
        .to_owned();
    let tokens = refresh_token::Entity::delete_many()
        .filter(
            Condition::any()
                .add(refresh_token::Column::ExpiresAt.lte(now))
                .add(refresh_token::Column::SessionId.in_subquery(revoked_sessions)),
        )
        .exec(db)
        .await?
        .rows_affected;
    // Tokens of these sessions go with them (ON DELETE CASCADE).
    let sessions =
        session::Entity::delete_many().filter(session::Column::ExpiresAt.lte(now)).exec(db).await?.rows_affected;
    let links = email_token::Entity::delete_many()
        .filter(email_token::Column::ExpiresAt.lte(now - chrono::Duration::days(1)))
        .exec(db)
        .await?
        .rows_affected;
    let windows = super::rate_limits::purge(db, now - chrono::Duration::days(1)).await?;
    let oauth = super::oauth::purge(db, now).await?;
    let challenges = super::mfa::purge(db, now).await? + super::passkeys::purge(db, now).await?;
    Ok(tokens + sessions + links + windows + oauth + challenges)
}

/// Runs `purge_expired` every `every`, for as long as the server runs.
pub fn spawn(
    db: super::Db,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
    every: std::time::Duration,
    retire_status_lists_after: chrono::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = clock.now();
            let retired = super::status::retire(&db, now - retire_status_lists_after).await;
            match purge_expired(&db, now).await.and_then(|n| Ok(n + retired?)) {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "expired tokens and sessions removed"),
                Err(e) => tracing::warn!(error = %e, "cleanup failed; will retry"),
            }
        }
    })
}
