//! The outbox worker: takes due mail from the outbox, works out who it goes
//! to and what it says, sends it and records the outcome. Tokens for links
//! are minted here, at send time, so the only copy of a raw token is the
//! mail itself, and a mail delayed by an outage still gets its full validity.

use std::{sync::Arc, time::Duration};

use lettre::message::Mailbox;

use super::{Mailer, Outgoing, SendError, templates::Letter};
use crate::{
    AppState,
    store::{
        email_tokens,
        outbox::{self, MailKind, OutboxRow},
        users,
    },
    token::link::{LinkToken, Purpose},
};

/// How long one attempt may take, SMTP exchange included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a claimed row stays hidden from other workers: longer than any
/// attempt, so only a crash lets it come back early.
const LEASE: chrono::Duration = chrono::Duration::seconds(120);
/// Rows taken per query.
const BATCH: u64 = 16;
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Runs for as long as the server does: sends whatever is due, then waits
/// for a request to queue more (or for the next poll).
pub fn spawn(state: AppState, mailer: Arc<dyn Mailer>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let poll = Duration::from_millis(state.config.mail.mail_poll_ms);
        loop {
            if let Err(e) = drain(&state, mailer.as_ref()).await {
                tracing::warn!(error = %e, "mail outbox: cannot read the queue; will retry");
            }
            tokio::select! {
                () = state.mail_queue.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
    })
}

/// Sends every due row; returns when none is left.
pub async fn drain(state: &AppState, mailer: &dyn Mailer) -> anyhow::Result<()> {
    loop {
        let rows = outbox::due(&state.db, state.clock.now(), BATCH).await?;
        if rows.is_empty() {
            return Ok(());
        }
        for row in rows {
            if let Some(attempt) = outbox::claim(&state.db, &row, state.clock.now(), LEASE).await? {
                try_once(state, mailer, &row, attempt).await?;
            }
        }
    }
}

/// One try at one row. Only database errors escape; a failed send is
/// recorded on the row.
async fn try_once(state: &AppState, mailer: &dyn Mailer, row: &OutboxRow, attempt: i32) -> anyhow::Result<()> {
    let Some(kind) = MailKind::parse(&row.kind) else {
        outbox::fail(&state.db, row.id, attempt, state.clock.now(), &format!("unknown mail kind {:?}", row.kind))
            .await?;
        return Ok(());
    };
    let send = async {
        match compose(state, kind, row).await {
            Ok(None) => Ok(None),
            Ok(Some(mail)) => mailer.send(&mail).await.map(Some),
            Err(e) => Err(SendError::Transient(format!("preparing the mail: {e:#}"))),
        }
    };
    let outcome = match tokio::time::timeout(ATTEMPT_TIMEOUT, send).await {
        Ok(Ok(None)) => {
            tracing::debug!(id = %row.id, kind = kind.as_str(), "mail outbox: no mail needed");
            return Ok(outbox::finish(&state.db, row.id, attempt).await?);
        }
        Ok(Ok(Some(()))) => Ok(()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(SendError::Transient(format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs()))),
    };
    let now = state.clock.now();
    match outcome {
        Ok(()) => {
            tracing::info!(id = %row.id, kind = kind.as_str(), attempt, "mail sent");
            crate::observe::metrics::mail_sent("sent");
            outbox::finish(&state.db, row.id, attempt).await?;
        }
        Err(SendError::Transient(e)) if attempt < state.config.mail.mail_max_attempts as i32 => {
            let at = now + backoff(state.config.mail.mail_retry_ms, attempt);
            tracing::warn!(id = %row.id, kind = kind.as_str(), attempt, retry_at = %at, error = %e, "mail not sent; will retry");
            outbox::retry_at(&state.db, row.id, attempt, at, &e).await?;
            crate::observe::metrics::mail_sent("retry");
        }
        Err(SendError::Transient(e) | SendError::Permanent(e)) => {
            outbox::fail(&state.db, row.id, attempt, now, &e).await?;
            crate::observe::metrics::mail_sent("failed");
            let failed = outbox::counts(&state.db).await?.failed;
            tracing::error!(
                id = %row.id,
                kind = kind.as_str(),
                attempt,
                error = %e,
                failed_total = failed,
                "mail failed for good; kept in the outbox (`latchkey mail status`, `latchkey mail retry`)"
            );
        }
    }
    Ok(())
}

/// `base` × 2^(attempt − 1), at most an hour.
fn backoff(base_ms: u64, attempt: i32) -> chrono::Duration {
    let factor = 1u64 << (attempt.clamp(1, 31) - 1);
    let wait = Duration::from_millis(base_ms.saturating_mul(factor)).min(MAX_BACKOFF);
    chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1))
}

/// The mail a row stands for, or `None` when there is nobody to send it to
/// (no such account, or the address is already verified).
async fn compose(state: &AppState, kind: MailKind, row: &OutboxRow) -> anyhow::Result<Option<Outgoing>> {
    let Some(user) = users::find_by_email_key(&state.db, &row.email_key).await? else {
        return Ok(None);
    };
    let now = state.clock.now();
    let config = &state.config;
    let app_url = config.server.app_url();
    let forgot_link = format!("{app_url}/forgot-password");
    let (link, expires, token_link) = match kind {
        MailKind::VerifyEmail | MailKind::PasswordReset | MailKind::ChoosePassword => {
            let (purpose, path, ttl) = match kind {
                MailKind::VerifyEmail => (Purpose::VerifyEmail, "verify-email", config.mail.verify_email_ttl_secs),
                _ => (Purpose::ResetPassword, "reset-password", config.mail.password_reset_ttl_secs),
            };
            if purpose == Purpose::VerifyEmail && user.email_verified_at.is_some() {
                return Ok(None);
            }
            let ttl = Duration::from_secs(ttl);
            let expires_at = now + chrono::Duration::from_std(ttl)?;
            let token = LinkToken::generate(purpose);
            email_tokens::issue(&state.db, user.id, &token, now, expires_at).await?;
            let link = format!("{app_url}/{path}?token={}", token.expose());
            (link.clone(), Some((ttl, expires_at)), Some(link))
        }
        MailKind::SignupExisting
        | MailKind::PasswordChanged
        | MailKind::MfaEnabled
        | MailKind::MfaDisabled
        | MailKind::RecoveryCodeUsed
        | MailKind::PasskeyAdded
        | MailKind::PasskeyRemoved => (forgot_link, None, None),
    };
    // Whoever signed up chose the name; until the address is verified it may
    // be someone else's text aimed at the address's owner, so it is not shown.
    let name = user.name.filter(|_| user.email_verified_at.is_some());
    let letter = Letter {
        kind,
        name: name.clone(),
        email: user.email.clone(),
        verified: user.email_verified_at.is_some(),
        link,
        expires,
        at: row.created_at,
        app_url,
    };
    let rendered = letter.render()?;
    let to = Mailbox::new(name, user.email.parse()?);
    Ok(Some(Outgoing { to, subject: rendered.subject, text: rendered.text, html: rendered.html, link: token_link }))
}

/// Mails waiting to be sent (not those that failed for good).
pub async fn queue_depth(state: &AppState) -> anyhow::Result<u64> {
    Ok(outbox::counts(&state.db).await?.pending)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(1000, 1), chrono::Duration::seconds(1));
        assert_eq!(backoff(1000, 3), chrono::Duration::seconds(4));
        assert_eq!(backoff(30_000, 20), chrono::Duration::hours(1));
    }
}
