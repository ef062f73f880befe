//! Email verification: using the mailed link, and asking for a new one.

use chrono::Utc;
use sea_orm::TransactionTrait;

use super::flow::{FlowError, queue_for_address};
use crate::{
    AppState,
    session::ClientInfo,
    store::{
        email_tokens::{self, Unusable},
        events,
        outbox::MailKind,
        users,
    },
    token::link::{LinkToken, Purpose},
};

/// Marks the address of the token's account verified; the token is used up.
#[tracing::instrument(skip_all)]
pub async fn verify_email(state: &AppState, token: &str) -> Result<(), FlowError> {
    let token = LinkToken::parse(Purpose::VerifyEmail, token).ok_or(FlowError::Token(Unusable::Unknown))?;
    let now = Utc::now();
    let txn = state.db.begin().await?;
    let user_id = email_tokens::consume(&txn, &token, now).await?.map_err(FlowError::Token)?;
    users::mark_verified(&txn, user_id, now).await?;
    events::record(&txn, user_id, None, events::kind::EMAIL_VERIFIED, events::Origin::default(), now).await?;
    txn.commit().await?;
    tracing::info!(%user_id, "email address verified");
    Ok(())
}

/// Queues a new verification link for `email`; it is sent only if the
/// address has an account that is not verified yet.
pub async fn resend(state: &AppState, email: &str, client: &ClientInfo) -> Result<(), FlowError> {
    queue_for_address(state, MailKind::VerifyEmail, email, client).await
}
