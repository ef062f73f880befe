//! The second step of a login. A first factor that passed for an account
//! with TOTP gets no session but an `MfaRequired`: a single-use token good
//! for five minutes and five codes. `verify` trades it and a code for the
//! session the login would have opened, its `amr` saying both factors.

use chrono::Duration;
use entity::user;

use super::{Code, Holder, check_code, codes::MfaToken, passed};
use crate::{
    AppState,
    client::ClientInfo,
    fault::{Fault, carries_fault},
    limits::Rule,
    session::{self, IssuedTokens},
    store::{self, mfa::NewChallenge, profiles, users},
};

/// How long an `mfa_token` works.
pub const CHALLENGE_TTL: Duration = Duration::minutes(5);
/// Codes one `mfa_token` may have checked.
pub const MAX_ATTEMPTS: i32 = 5;
/// What a login with a second factor may continue with.
pub const METHODS: [&str; 2] = ["totp", "recovery_code"];

/// A login that needs its second factor: the token to answer it with (any
/// of `METHODS` will do).
#[derive(Debug)]
pub struct MfaRequired {
    pub mfa_token: MfaToken,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("unknown, used, expired or exhausted mfa_token")]
    InvalidToken,
    #[error("the code is wrong, used or expired")]
    InvalidCode,
    #[error(transparent)]
    Fault(Fault),
}

carries_fault!(VerifyError);

/// For a login whose first factor (`method`, an `amr` value) passed: `None`
/// when the account has no second factor, else the challenge to answer.
/// `db` is the caller's connection or transaction.
pub async fn require(
    db: &impl sea_orm::ConnectionTrait,
    state: &AppState,
    user: &user::Model,
    method: &str,
) -> Result<Option<MfaRequired>, Fault> {
    if !store::mfa::totp_enabled(db, user.id).await? {
        return Ok(None);
    }
    let now = state.clock.now();
    let token = MfaToken::generate();
    let new =
        NewChallenge { hash: token.hash(), user_id: user.id, method: method.into(), expires_at: now + CHALLENGE_TTL };
    store::mfa::create_challenge(db, new, now).await?;
    Ok(Some(MfaRequired { mfa_token: token }))
}

/// Answers a challenge: each call counts one of its attempts before the
/// code is checked, and the one that passes uses the challenge up.
#[tracing::instrument(skip_all)]
pub async fn verify(
    state: &AppState,
    presented: &str,
    code: Code<'_>,
    client: ClientInfo,
) -> Result<IssuedTokens, VerifyError> {
    let now = state.clock.now();
    state.limits.hit(&state.db, Rule::LoginPerIp, client.ip_or_unknown(), now).await?;
    let token = MfaToken::parse(presented.trim()).ok_or(VerifyError::InvalidToken)?;
    let hash = token.hash();
    let challenge =
        store::mfa::attempt_challenge(&state.db, &hash, MAX_ATTEMPTS, now).await?.ok_or(VerifyError::InvalidToken)?;
    let user = users::find_by_id(&state.db, challenge.user_id).await?.ok_or(VerifyError::InvalidToken)?;
    let holder = Holder { user_id: user.id, email_key: &user.email_key };
    if !check_code(state, holder, code, &client).await? {
        crate::observe::metrics::login("mfa", "invalid_mfa_code");
        return Err(VerifyError::InvalidCode);
    }
    if !store::mfa::claim_challenge(&state.db, &hash, state.clock.now()).await? {
        // Another request with this token got there first.
        return Err(VerifyError::InvalidToken);
    }
    passed(state, holder.email_key).await?;
    let amr = format!("{} otp mfa", challenge.method);
    let mut tokens = session::start(state, &user, &amr, client).await?;
    tokens.onboarding_required = Some(!profiles::exists(&state.db, user.id).await?);
    crate::observe::metrics::login("mfa", "ok");
    Ok(tokens)
}
