//! What the mailed-link and password flows can fail with.

use chrono::Utc;

use super::validate;
use crate::{
    AppState,
    auth::credentials::CheckError,
    error::FieldError,
    limits::Rule,
    session::ClientInfo,
    store::{
        email_tokens::Unusable,
        outbox::{self, MailKind},
    },
};

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The token in the link is unknown, used, superseded or expired.
    #[error("the token cannot be used: {0:?}")]
    Token(Unusable),
    /// A field broke a rule; `code` names the problem.
    #[error("invalid input")]
    Invalid { code: &'static str, errors: Vec<FieldError> },
    #[error("the current password is wrong")]
    WrongPassword,
    /// The account has no password and the session's login is not recent.
    #[error("a recent login is required")]
    ReauthenticationRequired,
    #[error("rate limited")]
    RateLimited(crate::limits::Limited),
    /// The access token's session has ended.
    #[error("session ended")]
    SessionEnded,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<CheckError> for FlowError {
    fn from(e: CheckError) -> Self {
        match e {
            CheckError::RateLimited(limited) => Self::RateLimited(limited),
            CheckError::Internal(e) => Self::Internal(e),
        }
    }
}

impl From<sea_orm::DbErr> for FlowError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Internal(e.into())
    }
}

fn invalid_email(e: FieldError) -> FlowError {
    FlowError::Invalid { code: "invalid_email", errors: vec![e] }
}

pub(crate) fn invalid_password(errors: Vec<FieldError>) -> FlowError {
    FlowError::Invalid { code: "invalid_password", errors }
}

/// Queues a `kind` mail about whatever account `email` has, if any: the mail
/// worker decides, so the request does the same work for every address.
pub(crate) async fn queue_for_address(
    state: &AppState,
    kind: MailKind,
    email: &str,
    client: &ClientInfo,
) -> Result<(), FlowError> {
    let email = validate::email(email).map_err(invalid_email)?;
    let now = Utc::now();
    // Per address first: a flood aimed at one inbox stops there whatever its source.
    state.limits.hit(&state.db, Rule::MailPerAddress, &email.key, now).await?.map_err(FlowError::RateLimited)?;
    state.limits.hit(&state.db, Rule::MailPerIp, client.ip_or_unknown(), now).await?.map_err(FlowError::RateLimited)?;
    outbox::enqueue(&state.db, kind, &email.key, now).await?;
    state.mail_queue.notify_one();
    Ok(())
}
