//! The mail outbox. Requests `enqueue` inside their own transaction; the
//! mail worker takes due rows with a lease (`claim`), so a crash mid-send
//! only delays the mail until the lease runs out, and two workers never send
//! the same row at once.

use chrono::{DateTime, Utc};
use entity::mail_outbox;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::Expr,
};
use uuid::Uuid;

pub use mail_outbox::Model as OutboxRow;

/// What a queued mail is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// A link that verifies the address (after sign-up, or asked for again).
    VerifyEmail,
    /// Someone tried to sign up with an address that already has an account.
    SignupExisting,
    /// A password-reset link.
    PasswordReset,
    /// The password was changed or reset.
    PasswordChanged,
    /// The address was verified without the sign-up's password, which was
    /// removed: a link to choose one.
    ChoosePassword,
    /// TOTP was turned on.
    MfaEnabled,
    /// TOTP was turned off.
    MfaDisabled,
    /// A recovery code was used.
    RecoveryCodeUsed,
    /// A passkey was added.
    PasskeyAdded,
    /// A passkey was removed.
    PasskeyRemoved,
}

impl MailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::VerifyEmail => "verify_email",
            MailKind::SignupExisting => "signup_existing",
            MailKind::PasswordReset => "password_reset",
            MailKind::PasswordChanged => "password_changed",
            MailKind::ChoosePassword => "choose_password",
            MailKind::MfaEnabled => "mfa_enabled",
            MailKind::MfaDisabled => "mfa_disabled",
            MailKind::RecoveryCodeUsed => "recovery_code_used",
            MailKind::PasskeyAdded => "passkey_added",
            MailKind::PasskeyRemoved => "passkey_removed",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::VerifyEmail,
            Self::SignupExisting,
            Self::PasswordReset,
            Self::PasswordChanged,
            Self::ChoosePassword,
            Self::MfaEnabled,
            Self::MfaDisabled,
            Self::RecoveryCodeUsed,
            Self::PasskeyAdded,
            Self::PasskeyRemoved,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == value)
    }
}

/// Queues a mail about the account at `email_key`, due at once.
pub async fn enqueue(
    db: &impl ConnectionTrait,
    kind: MailKind,
    email_key: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let row = mail_outbox::ActiveModel {
        id: Set(Uuid::now_v7()),
        kind: Set(kind.as_str().into()),
        email_key: Set(email_key.into()),
        attempts: Set(0),
        next_attempt_at: Set(now),
        created_at: Set(now),
        last_error: Set(None),
        failed_at: Set(None),
    };
    mail_outbox::Entity::insert(row).exec_without_returning(db).await?;
    Ok(())
}

fn pending() -> sea_orm::Select<mail_outbox::Entity> {
    mail_outbox::Entity::find().filter(mail_outbox::Column::FailedAt.is_null())
}

/// Up to `limit` rows due by `now`, oldest first.
pub async fn due(db: &impl ConnectionTrait, now: DateTime<Utc>, limit: u64) -> Result<Vec<OutboxRow>, DbErr> {
    pending()
        .filter(mail_outbox::Column::NextAttemptAt.lte(now))
        .order_by_asc(mail_outbox::Column::NextAttemptAt)
        .limit(limit)
        .all(db)
        .await
}

/// Takes `row` for one attempt, leasing it for `lease` from `now`. False when
/// another worker took it first. The returned attempt number must be passed
/// back to `finish`, `retry_at` or `fail`, which do nothing once the lease has
/// passed to another worker.
pub async fn claim(
    db: &impl ConnectionTrait,
    row: &OutboxRow,
    now: DateTime<Utc>,
    lease: chrono::Duration,
) -> Result<Option<i32>, DbErr> {
    let attempt = row.attempts + 1;
    let taken = mail_outbox::Entity::update_many()
        .col_expr(mail_outbox::Column::Attempts, Expr::value(attempt))
        .col_expr(mail_outbox::Column::NextAttemptAt, Expr::value(now + lease))
        .filter(mail_outbox::Column::Id.eq(row.id))
        .filter(mail_outbox::Column::Attempts.eq(row.attempts))
        .filter(mail_outbox::Column::NextAttemptAt.lte(now))
        .filter(mail_outbox::Column::FailedAt.is_null())
        .exec(db)
        .await?
        .rows_affected;
    Ok((taken == 1).then_some(attempt))
}

/// The row as held by the worker that claimed `attempt`.
fn held(id: Uuid, attempt: i32) -> sea_orm::Condition {
    sea_orm::Condition::all().add(mail_outbox::Column::Id.eq(id)).add(mail_outbox::Column::Attempts.eq(attempt))
}

/// The mail was sent, or had nobody to go to: the row is done.
pub async fn finish(db: &impl ConnectionTrait, id: Uuid, attempt: i32) -> Result<(), DbErr> {
    mail_outbox::Entity::delete_many().filter(held(id, attempt)).exec(db).await?;
    Ok(())
}

/// The attempt failed; try again at `at`.
pub async fn retry_at(
    db: &impl ConnectionTrait,
    id: Uuid,
    attempt: i32,
    at: DateTime<Utc>,
    error: &str,
) -> Result<(), DbErr> {
    mail_outbox::Entity::update_many()
        .col_expr(mail_outbox::Column::NextAttemptAt, Expr::value(at))
        .col_expr(mail_outbox::Column::LastError, Expr::value(error))
        .filter(held(id, attempt))
        .exec(db)
        .await?;
    Ok(())
}

/// The mail cannot be sent: keep the row, marked, for an operator to see.
pub async fn fail(
    db: &impl ConnectionTrait,
    id: Uuid,
    attempt: i32,
    now: DateTime<Utc>,
    error: &str,
) -> Result<(), DbErr> {
    mail_outbox::Entity::update_many()
        .col_expr(mail_outbox::Column::FailedAt, Expr::value(now))
        .col_expr(mail_outbox::Column::LastError, Expr::value(error))
        .filter(held(id, attempt))
        .exec(db)
        .await?;
    Ok(())
}

/// Mail still to be sent, and mail that failed for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub pending: u64,
    pub failed: u64,
}

pub async fn counts(db: &impl ConnectionTrait) -> Result<Counts, DbErr> {
    let all = mail_outbox::Entity::find().count(db).await?;
    let failed = failed_rows().count(db).await?;
    Ok(Counts { pending: all - failed, failed })
}

fn failed_rows() -> sea_orm::Select<mail_outbox::Entity> {
    mail_outbox::Entity::find().filter(mail_outbox::Column::FailedAt.is_not_null())
}

/// The rows that failed for good, oldest first.
pub async fn failed(db: &impl ConnectionTrait) -> Result<Vec<OutboxRow>, DbErr> {
    failed_rows().order_by_asc(mail_outbox::Column::CreatedAt).all(db).await
}

/// Puts every failed row back in the queue with a fresh set of attempts.
pub async fn requeue_failed(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64, DbErr> {
    Ok(mail_outbox::Entity::update_many()
        .col_expr(mail_outbox::Column::FailedAt, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(mail_outbox::Column::Attempts, Expr::value(0))
        .col_expr(mail_outbox::Column::NextAttemptAt, Expr::value(now))
        .filter(mail_outbox::Column::FailedAt.is_not_null())
        .exec(db)
        .await?
        .rows_affected)
}

/// Drops the queued mail about `email_key` (its account is being deleted).
pub async fn discard_for(db: &impl ConnectionTrait, email_key: &str) -> Result<(), DbErr> {
    mail_outbox::Entity::delete_many().filter(mail_outbox::Column::EmailKey.eq(email_key)).exec(db).await?;
    Ok(())
}
