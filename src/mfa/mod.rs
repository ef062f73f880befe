//! Second factors (README "Second factors"): TOTP with recovery codes.
//! `challenge` is the step a login with a correct first factor takes
//! before it gets a session; `auth::factors` is the signed-in user
//! enrolling and removing them. Every check of a code, from any endpoint,
//! goes through `check_code`, which counts it against the account's
//! failed-login limit before it looks at the code.

pub mod challenge;
pub mod codes;
pub mod keys;
pub mod totp;

use uuid::Uuid;

use self::totp::TotpSecret;
use crate::{
    AppState,
    client::ClientInfo,
    fault::Fault,
    limits::Rule,
    store::{self, events, outbox::MailKind},
};

/// A second-factor code as presented: from the authenticator app, or one
/// of the recovery codes.
#[derive(Clone, Copy)]
pub enum Code<'a> {
    Totp(&'a str),
    Recovery(&'a str),
}

impl std::fmt::Debug for Code<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Code::Totp(_) => "Code::Totp(<hidden>)",
            Code::Recovery(_) => "Code::Recovery(<hidden>)",
        })
    }
}

impl<'a> Code<'a> {
    /// A field that may hold either: six digits are a TOTP code, anything
    /// else is tried as a recovery code.
    pub fn either(value: &'a str) -> Self {
        let value = value.trim();
        if value.len() == 6 && value.bytes().all(|b| b.is_ascii_digit()) {
            Code::Totp(value)
        } else {
            Code::Recovery(value)
        }
    }
}

/// Whose code is checked: the account and its address (the limit's subject).
#[derive(Debug, Clone, Copy)]
pub struct Holder<'a> {
    pub user_id: Uuid,
    pub email_key: &'a str,
}

/// Checks `code` against the account's confirmed TOTP secret or its unused
/// recovery codes. The check is counted first (the account's failed-login
/// limit, shared with password checks), and a code that passes is used up:
/// its time step, or the recovery code itself, never passes again, even
/// for a request racing this one. `Ok(false)` for any code that does not
/// pass; a failure is logged as `mfa_failed`, a recovery code used as
/// `recovery_code_used` (with a notice mail).
pub async fn check_code(
    state: &AppState,
    holder: Holder<'_>,
    code: Code<'_>,
    client: &ClientInfo,
) -> Result<bool, Fault> {
    state.limits.hit(&state.db, Rule::LoginFailuresPerAccount, holder.email_key, state.clock.now()).await?;
    let passed = match code {
        Code::Totp(code) => totp_passes(state, holder.user_id, code).await?,
        Code::Recovery(code) => match codes::normalise_recovery_code(code) {
            Some(code) => {
                let hash = state.mfa_keys.recovery_hash(&code);
                store::mfa::use_recovery_code(&state.db, holder.user_id, &hash).await?
            }
            None => false,
        },
    };
    match (passed, code) {
        (false, _) => notify(state, holder, events::kind::MFA_FAILED, None, client).await?,
        (true, Code::Recovery(_)) => {
            let mail = Some(MailKind::RecoveryCodeUsed);
            notify(state, holder, events::kind::RECOVERY_CODE_USED, mail, client).await?;
        }
        (true, Code::Totp(_)) => {}
    }
    Ok(passed)
}

async fn totp_passes(state: &AppState, user_id: Uuid, code: &str) -> Result<bool, Fault> {
    let Some(row) = store::mfa::totp(&state.db, user_id).await?.filter(|t| t.confirmed_at.is_some()) else {
        return Ok(false);
    };
    let Some(secret) = open_secret(state, user_id, &row.secret_sealed) else {
        return Ok(false);
    };
    let Some(step) = secret.check(code, state.clock.now().timestamp().max(0) as u64) else {
        return Ok(false);
    };
    Ok(store::mfa::accept_step(&state.db, user_id, step as i64).await?)
}

/// The TOTP secret sealed in `sealed`. A seal that does not open (the
/// `mfa.key` file was replaced) is logged: no code can pass until the
/// factor is enrolled again or the old key is restored.
pub(crate) fn open_secret(state: &AppState, user_id: Uuid, sealed: &[u8]) -> Option<TotpSecret> {
    let opened = state.mfa_keys.open(user_id, sealed).map(TotpSecret::from_bytes);
    if opened.is_none() {
        tracing::error!(%user_id, "a TOTP secret does not open with mfa.key (was the key replaced?)");
    }
    opened
}

/// After a code passed: the account's failures are forgotten, as after a
/// correct password without a second factor.
pub(crate) async fn passed(state: &AppState, email_key: &str) -> Result<(), Fault> {
    Ok(state.limits.clear(&state.db, Rule::LoginFailuresPerAccount, email_key).await?)
}

/// Logs `kind` for the account and, if `mail` is set, queues its notice
/// (the owner is told of every change to how the account signs in).
pub(crate) async fn notify(
    state: &AppState,
    holder: Holder<'_>,
    kind: &str,
    mail: Option<MailKind>,
    client: &ClientInfo,
) -> Result<(), Fault> {
    let now = state.clock.now();
    events::record(&state.db, holder.user_id, None, kind, client.origin(), now).await?;
    if let Some(mail) = mail {
        store::outbox::enqueue(&state.db, mail, holder.email_key, now).await?;
        state.mail_queue.notify_one();
    }
    Ok(())
}
