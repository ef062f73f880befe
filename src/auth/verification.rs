//! Email verification: using the mailed link, and asking for a new one.
//!
//! The link proves the mailbox; only the account's password proves that
//! whoever clicks it is whoever signed up. A verification that comes with
//! the password keeps it. One without it (the owner of an address someone
//! else signed up with, or a client that does not ask) still verifies the
//! address, but what the unproven sign-up chose — its password and its
//! name — is removed, and the owner is mailed a link to choose a password.

use sea_orm::TransactionTrait;

use super::{
    credentials,
    flow::{FlowError, queue_for_address},
};
use crate::{
    AppState,
    client::ClientInfo,
    secret::Password,
    store::{
        email_tokens::{self, Unusable},
        events,
        outbox::{self, MailKind},
        sessions, users,
    },
    token::link::{LinkToken, Purpose},
};

/// What verifying did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The sign-up's password was removed (it was not confirmed); a link to
    /// choose one is on its way.
    pub password_removed: bool,
}

/// Marks the address of the token's account verified; the token is used up.
/// With `password`, it must be the account's (a wrong one leaves the token
/// unused, and counts toward the account's failed-login limit).
#[tracing::instrument(skip_all)]
pub async fn verify_email(
    state: &AppState,
    token: &str,
    password: Option<&Password>,
    client: &ClientInfo,
) -> Result<Verified, FlowError> {
    let token = LinkToken::parse(Purpose::VerifyEmail, token).ok_or(FlowError::Token(Unusable::Unknown))?;
    // Checked before the costly hash; `consume` below re-checks atomically.
    let owner = email_tokens::check(&state.db, &token, state.clock.now()).await?.map_err(FlowError::Token)?;
    let user = users::find_by_id(&state.db, owner).await?.ok_or(FlowError::Token(Unusable::Unknown))?;
    let confirmed = match (password, &user.password_hash) {
        (Some(password), Some(stored)) => {
            if !credentials::check_owner(state, &user.email_key, password, Some(stored.clone())).await? {
                return Err(FlowError::WrongPassword);
            }
            credentials::succeeded(state, user.id, &user.email_key).await?;
            true
        }
        (None, Some(_)) => false,
        (_, None) => true, // no password to confirm
    };

    let now = state.clock.now();
    let txn = state.db.begin().await?;
    let user_id = email_tokens::consume(&txn, &token, now).await?.map_err(FlowError::Token)?;
    let user = users::find_by_id(&txn, user_id).await?.ok_or(FlowError::Token(Unusable::Unknown))?;
    // An address verified already (by a reset link, say) keeps its password.
    let remove = !confirmed && user.email_verified_at.is_none() && user.password_hash.is_some();
    users::mark_verified(&txn, user_id, now).await?;
    let origin = client.origin();
    events::record(&txn, user_id, None, events::kind::EMAIL_VERIFIED, origin, now).await?;
    if remove {
        users::drop_unproven(&txn, user_id, now).await?;
        // Second factors the unproven sign-up set up would lock the owner out.
        crate::store::mfa::remove_totp(&txn, user_id).await?;
        crate::store::passkeys::delete_all(&txn, user_id).await?;
        let ended = sessions::revoke_all(&txn, user_id, None, now).await?;
        crate::observe::metrics::sessions_revoked(events::kind::PASSWORD_REMOVED, ended);
        events::record(&txn, user_id, None, events::kind::PASSWORD_REMOVED, origin, now).await?;
        outbox::enqueue(&txn, MailKind::ChoosePassword, &user.email_key, now).await?;
    }
    txn.commit().await?;
    if remove {
        state.mail_queue.notify_one();
    }
    tracing::info!(%user_id, password_removed = remove, "email address verified");
    Ok(Verified { password_removed: remove })
}

/// Queues a new verification link for `email`; it is sent only if the
/// address has an account that is not verified yet.
pub async fn resend(state: &AppState, email: &str, client: &ClientInfo) -> Result<(), FlowError> {
    queue_for_address(state, MailKind::VerifyEmail, email, client).await
}
