//! Passwords after sign-up: forgotten (mailed reset link), reset with that
//! link, and changed by a signed-in user.

use sea_orm::TransactionTrait;

use super::{
    credentials,
    flow::{FlowError, queue_for_address},
    validate::{self, Invalid},
};
use crate::{
    AppState,
    client::ClientInfo,
    secret::Password,
    session::live::LiveUser,
    store::{
        email_tokens::{self, Unusable},
        events,
        outbox::{self, MailKind},
        sessions, users,
    },
    token::link::{LinkToken, Purpose},
};

/// Queues a reset link for `email`; it is sent only if the address has an account.
pub async fn forgot(state: &AppState, email: &str, client: &ClientInfo) -> Result<(), FlowError> {
    queue_for_address(state, MailKind::PasswordReset, email, client).await
}

/// Sets a new password with a reset link: the link is used up, every session
/// of the account ends, the owner is told by mail. It does not log in.
/// Opening the link proves the mailbox, so the address counts as verified.
#[tracing::instrument(skip_all)]
pub async fn reset(
    state: &AppState,
    token: &str,
    new_password: &Password,
    client: ClientInfo,
) -> Result<(), FlowError> {
    let token = LinkToken::parse(Purpose::ResetPassword, token).ok_or(FlowError::Token(Unusable::Unknown))?;
    // Check before the costly hash; `consume` below re-checks atomically.
    let owner = email_tokens::check(&state.db, &token, state.clock.now()).await?.map_err(FlowError::Token)?;
    let owner = users::find_by_id(&state.db, owner).await?.ok_or(FlowError::Token(Unusable::Unknown))?;
    let personal = [owner.email.as_str(), owner.name.as_deref().unwrap_or_default()];
    validate::password(new_password.expose(), &personal).map_err(|e| FlowError::Invalid(Invalid::password(e)))?;
    let hash = credentials::hash_new(state, &state.db, owner.id, new_password).await?;

    let now = state.clock.now();
    let txn = state.db.begin().await?;
    let user_id = email_tokens::consume(&txn, &token, now).await?.map_err(FlowError::Token)?;
    let user = users::find_by_id(&txn, user_id).await?.ok_or(FlowError::Token(Unusable::Unknown))?;
    users::set_password(&txn, user_id, hash, now).await?;
    crate::store::mfa::drop_challenges(&txn, user_id).await?;
    users::mark_verified(&txn, user_id, now).await?;
    email_tokens::supersede_all(&txn, user_id, Purpose::ResetPassword, now).await?;
    let ended = sessions::revoke_all(&txn, user_id, None, now).await?;
    events::record(&txn, user_id, None, events::kind::PASSWORD_RESET, client.origin(), now).await?;
    outbox::enqueue(&txn, MailKind::PasswordChanged, &user.email_key, now).await?;
    txn.commit().await?;
    crate::observe::metrics::sessions_revoked(events::kind::PASSWORD_RESET, ended);
    state.mail_queue.notify_one();
    tracing::info!(%user_id, sessions_ended = ended, "password reset");
    Ok(())
}

/// Changes the password of the signed-in user, who must give the current
/// one. The other sessions end; this one stays. The owner is told by mail.
#[tracing::instrument(skip_all)]
pub async fn change(
    state: &AppState,
    user: &LiveUser,
    current: &Password,
    new_password: &Password,
    client: ClientInfo,
) -> Result<(), FlowError> {
    let account = user.account();
    let stored = users::find_by_id(&state.db, account.id).await?.and_then(|u| u.password_hash);
    if !credentials::check_owner(state, &account.email_key, current, stored).await? {
        return Err(FlowError::WrongPassword);
    }
    credentials::succeeded(state, account.id, &account.email_key).await?;
    // What a guesser would build a password from for this account.
    let personal = [account.email.as_str(), account.name.as_deref().unwrap_or_default()];
    validate::password(new_password.expose(), &personal).map_err(|e| FlowError::Invalid(Invalid::password(e)))?;
    let hash = credentials::hash_new(state, &state.db, account.id, new_password).await?;

    let now = state.clock.now();
    let txn = state.db.begin().await?;
    users::set_password(&txn, account.id, hash, now).await?;
    crate::store::mfa::drop_challenges(&txn, account.id).await?;
    // A reset link asked for before the change must not undo it.
    email_tokens::supersede_all(&txn, account.id, Purpose::ResetPassword, now).await?;
    let ended = sessions::revoke_all(&txn, account.id, Some(user.session_id()), now).await?;
    let kind = events::kind::PASSWORD_CHANGED;
    events::record(&txn, account.id, Some(user.session_id()), kind, client.origin(), now).await?;
    outbox::enqueue(&txn, MailKind::PasswordChanged, &account.email_key, now).await?;
    txn.commit().await?;
    crate::observe::metrics::sessions_revoked(kind, ended);
    state.mail_queue.notify_one();
    tracing::info!(user_id = %account.id, sessions_ended = ended, "password changed");
    Ok(())
}
