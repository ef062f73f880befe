use super::{credentials, validate};
use crate::{
    AppState,
    client::ClientInfo,
    fault::{Fault, carries_fault},
    limits::Rule,
    mfa::challenge::{self, MfaRequired},
    password::Match,
    secret::Password,
    session::{self, IssuedTokens},
    store::{events, profiles, signup_attempts, users},
};

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("email address not verified")]
    EmailNotVerified,
    /// The password was right; the account's second factor comes next.
    #[error("a second factor is required")]
    MfaRequired(MfaRequired),
    #[error(transparent)]
    Fault(Fault),
}

carries_fault!(LoginError);

/// Password login. Unknown address and wrong password take the same path,
/// including one argon2 computation, and fail the same way. Two limits
/// apply, each counting the attempt before any work: attempts per client
/// IP, and password checks per address (known or not, so the limit says
/// nothing about accounts either).
///
/// A password tried at a sign-up of a taken address is answered as a new
/// unverified account's would be, so signing up and then logging in does
/// not tell whether the address was taken.
#[tracing::instrument(skip_all)]
pub async fn login(
    state: &AppState,
    email: &str,
    password: &Password,
    client: ClientInfo,
) -> Result<IssuedTokens, LoginError> {
    let answer = attempt(state, email, password, client).await;
    let result = match &answer {
        Ok(_) => "ok",
        Err(LoginError::InvalidCredentials) => "invalid_credentials",
        Err(LoginError::EmailNotVerified) => "email_not_verified",
        Err(LoginError::MfaRequired(_)) => "mfa_required",
        Err(LoginError::Fault(Fault::RateLimited(_))) => "rate_limited",
        Err(LoginError::Fault(Fault::Internal(_))) => "error",
    };
    crate::observe::metrics::login("password", result);
    answer
}

async fn attempt(
    state: &AppState,
    email: &str,
    password: &Password,
    client: ClientInfo,
) -> Result<IssuedTokens, LoginError> {
    state.limits.hit(&state.db, Rule::LoginPerIp, client.ip_or_unknown(), state.clock.now()).await?;
    let email = validate::email(email).ok();
    let account = email.as_ref().map_or("invalid", |e| e.key.as_str());
    let (user, attempts) = match &email {
        Some(email) => (
            users::find_by_email_key(&state.db, &email.key).await?,
            signup_attempts::for_address(&state.db, &email.key).await?,
        ),
        None => (None, Vec::new()),
    };
    let owner = user.as_ref().and_then(|u| u.password_hash.clone());
    let matched = credentials::check(state, account, password, owner, attempts).await?;
    let require_verification = state.config.server.require_email_verification;
    let user = match (user, matched) {
        (Some(user), Match::Owner) => user,
        // As for a new account whose address is not verified yet; without
        // verification there is no answer that would not tell.
        (Some(user), Match::Attempt) => {
            record_failure(state, user.id, client);
            return Err(if require_verification {
                LoginError::EmailNotVerified
            } else {
                LoginError::InvalidCredentials
            });
        }
        (user, _) => {
            if let Some(user) = user {
                record_failure(state, user.id, client);
            }
            return Err(LoginError::InvalidCredentials);
        }
    };
    // Only after the password matched, so this cannot probe for accounts;
    // the failures stay counted, as for a password tried at a sign-up.
    if require_verification && user.email_verified_at.is_none() {
        return Err(LoginError::EmailNotVerified);
    }
    // The failures stay counted until the second factor passes too, so
    // knowing the password does not reset the count of codes tried.
    if let Some(required) = challenge::require(&state.db, state, &user, "pwd").await? {
        return Err(LoginError::MfaRequired(required));
    }
    credentials::forget_failures(state, account).await?;
    let mut tokens = session::start(state, &user, "pwd", client).await?;
    tokens.onboarding_required = Some(!profiles::exists(&state.db, user.id).await?);
    Ok(tokens)
}

/// Records a failed login off the response path: an unknown address writes
/// no event, and waiting for this one would make a wrong password answer
/// measurably later than an unknown address.
fn record_failure(state: &AppState, user_id: uuid::Uuid, client: ClientInfo) {
    let (db, now) = (state.db.clone(), state.clock.now());
    tokio::spawn(async move {
        if let Err(e) = events::record(&db, user_id, None, events::kind::LOGIN_FAILED, client.origin(), now).await {
            tracing::warn!(error = %e, "could not record a failed login");
        }
    });
}
