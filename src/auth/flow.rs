//! What the mailed-link and password flows can fail with.

use super::validate::{self, Invalid};
use crate::{
    AppState,
    client::ClientInfo,
    fault::{Fault, carries_fault},
    limits::Rule,
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
    /// A field broke a rule.
    #[error("invalid input")]
    Invalid(Invalid),
    #[error("the current password is wrong")]
    WrongPassword,
    /// The account has no password and the session's login is not recent.
    #[error("a recent login is required")]
    ReauthenticationRequired,
    #[error(transparent)]
    Fault(Fault),
}

carries_fault!(FlowError);

/// Queues a `kind` mail about whatever account `email` has, if any: the mail
/// worker decides, so the request does the same work for every address.
pub(crate) async fn queue_for_address(
    state: &AppState,
    kind: MailKind,
    email: &str,
    client: &ClientInfo,
) -> Result<(), FlowError> {
    let email = validate::email(email).map_err(|e| FlowError::Invalid(Invalid::email(e)))?;
    let now = state.clock.now();
    // Per address first: a flood aimed at one inbox stops there whatever its source.
    state.limits.hit(&state.db, Rule::MailPerAddress, &email.key, now).await?;
    state.limits.hit(&state.db, Rule::MailPerIp, client.ip_or_unknown(), now).await?;
    outbox::enqueue(&state.db, kind, &email.key, now).await?;
    state.mail_queue.notify_one();
    Ok(())
}
