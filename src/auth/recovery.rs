//! Passwords after sign-up: forgotten (mailed reset link), reset with that
//! link, and changed by a signed-in user.

use chrono::Utc;
use sea_orm::TransactionTrait;

use super::{
    credentials,
    flow::{FlowError, invalid_password, queue_for_address},
    validate,
};
use crate::{
    AppState,
    secret::Password,
    session::ClientInfo,
    store::{
        email_tokens::{self, Unusable},
        events,
        outbox::{self, MailKind},
        sessions, users,
    },
    token::{
        AccessClaims,
        link::{LinkToken, Purpose},
    },
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
    let owner = email_tokens::check(&state.db, &token, Utc::now()).await?.map_err(FlowError::Token)?;
    let owner = users::find_by_id(&state.db, owner).await?.ok_or(FlowError::Token(Unusable::Unknown))?;
    validate::password(new_password.expose(), &personal(&owner)).map_err(invalid_password)?;
    let hash = credentials::hash_new(state, &state.db, owner.id, new_password).await?;

    let now = Utc::now();
    let txn = state.db.begin().await?;
    let user_id = email_tokens::consume(&txn, &token, now).await?.map_err(FlowError::Token)?;
    let user = users::find_by_id(&txn, user_id).await?.ok_or(FlowError::Token(Unusable::Unknown))?;
    users::set_password(&txn, user_id, hash, now).await?;
    users::mark_verified(&txn, user_id, now).await?;
    email_tokens::supersede_all(&txn, user_id, Purpose::ResetPassword, now).await?;
    let ended = sessions::revoke_all(&txn, user_id, None, now).await?;
    events::record(&txn, user_id, None, events::kind::PASSWORD_RESET, client.origin(), now).await?;
    outbox::enqueue(&txn, MailKind::PasswordChanged, &user.email_key, now).await?;
    txn.commit().await?;
    state.mail_queue.notify_one();
    tracing::info!(%user_id, sessions_ended = ended, "password reset");
    Ok(())
}

/// Changes the password of the signed-in user, who must give the current
/// one. The other sessions end; this one stays. The owner is told by mail.
#[tracing::instrument(skip_all)]
pub async fn change(
    state: &AppState,
    claims: &AccessClaims,
    current: &Password,
    new_password: &Password,
    client: ClientInfo,
) -> Result<(), FlowError> {
    let user = super::account::live_user(state, claims).await?;
    if !credentials::check_owner(state, &user.email_key, current, user.password_hash.clone()).await? {
        return Err(FlowError::WrongPassword);
    }
    credentials::succeeded(state, &user.email_key).await?;
    validate::password(new_password.expose(), &personal(&user)).map_err(invalid_password)?;
    let hash = credentials::hash_new(state, &state.db, user.id, new_password).await?;

    let now = Utc::now();
    let txn = state.db.begin().await?;
    users::set_password(&txn, user.id, hash, now).await?;
    // A reset link asked for before the change must not undo it.
    email_tokens::supersede_all(&txn, user.id, Purpose::ResetPassword, now).await?;
    let ended = sessions::revoke_all(&txn, user.id, Some(claims.sid), now).await?;
    let kind = events::kind::PASSWORD_CHANGED;
    events::record(&txn, user.id, Some(claims.sid), kind, client.origin(), now).await?;
    outbox::enqueue(&txn, MailKind::PasswordChanged, &user.email_key, now).await?;
    txn.commit().await?;
    state.mail_queue.notify_one();
    tracing::info!(user_id = %user.id, sessions_ended = ended, "password changed");
    Ok(())
}

/// What a guesser would build a password from for this account.
fn personal(user: &entity::user::Model) -> [&str; 2] {
    [user.email.as_str(), user.name.as_deref().unwrap_or_default()]
}
