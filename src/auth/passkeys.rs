//! Passkeys (README "Passkeys"), through webauthn-rs: a signed-in user
//! registers one (after re-authentication), lists and removes them; anyone
//! signs in with one, no password, no address typed (discoverable
//! credentials). Every ceremony's state is kept in the database, single use
//! and five minutes, so any instance finishes what another started.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
};

use super::{account, flow::FlowError};
use crate::{
    AppState,
    client::ClientInfo,
    fault::{Fault, carries_fault},
    limits::Rule,
    mfa::{Holder, notify},
    secret::Password,
    session::{self, IssuedTokens, live::LiveUser},
    store::{
        self, events,
        outbox::MailKind,
        passkeys::{NewPasskey, Purpose},
    },
};

/// How long a ceremony may take.
const CEREMONY_TTL: Duration = Duration::minutes(5);
/// A passkey's name, at most.
pub const MAX_NAME_CHARS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error("passkeys are not configured")]
    NotConfigured,
    #[error(transparent)]
    Reauthenticate(FlowError),
    /// No such ceremony: unknown, used, expired (or, for a registration, none started).
    #[error("the passkey challenge is unknown, used or expired")]
    InvalidChallenge,
    /// The credential did not verify: not ours, removed, a bad signature, a
    /// counter that went back, or not the browser's answer to the challenge.
    #[error("the passkey was refused")]
    Refused,
    #[error("the passkey name is empty, too long or has control characters")]
    InvalidName,
    #[error("no such passkey of the caller's")]
    NotFound,
    #[error(transparent)]
    Fault(Fault),
}

carries_fault!(PasskeyError);

impl From<FlowError> for PasskeyError {
    fn from(e: FlowError) -> Self {
        match e {
            FlowError::Fault(fault) => Self::Fault(fault),
            other => Self::Reauthenticate(other),
        }
    }
}

fn webauthn(state: &AppState) -> Result<&webauthn_rs::Webauthn, PasskeyError> {
    state.webauthn.as_ref().ok_or(PasskeyError::NotConfigured)
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, Fault> {
    Ok(serde_json::to_string(value).map_err(anyhow::Error::from)?)
}

/// A registered passkey, as its owner sees it.
#[derive(Debug, Clone, poem_openapi::Object)]
pub struct PasskeyInfo {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    #[oai(skip_serializing_if_is_none)]
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<store::passkeys::Passkey> for PasskeyInfo {
    fn from(p: store::passkeys::Passkey) -> Self {
        Self { id: p.id, name: p.name, created_at: p.created_at, last_used_at: p.last_used_at }
    }
}

/// Starts registering a passkey for the signed-in user, after
/// re-authentication: the creation options for the browser (a resident key
/// required, the user verified), excluding the passkeys they have.
pub async fn register_start(
    state: &AppState,
    user: &LiveUser,
    password: Option<&Password>,
) -> Result<serde_json::Value, PasskeyError> {
    let webauthn = webauthn(state)?;
    account::reauthenticate(state, user, password).await?;
    let account = user.account();
    let existing = store::passkeys::list(&state.db, account.id).await?;
    let exclude = existing
        .iter()
        .filter_map(|p| serde_json::from_str::<Passkey>(&p.credential).ok())
        .map(|p| p.cred_id().clone())
        .collect::<Vec<_>>();
    let (options, registration) = webauthn
        .start_passkey_registration(account.id, &account.email, &account.email, Some(exclude))
        .map_err(|e| anyhow::anyhow!("starting a passkey registration: {e}"))?;
    let now = state.clock.now();
    let saved = json(&registration)?;
    store::passkeys::save_ceremony(&state.db, Purpose::Register, Some(account.id), saved, now, now + CEREMONY_TTL)
        .await?;
    let mut public_key = serde_json::to_value(&options.public_key).map_err(anyhow::Error::from)?;
    // A passkey is found by the browser itself at sign-in: ask for a
    // discoverable (resident) credential.
    if let Some(selection) = public_key.get_mut("authenticatorSelection").and_then(|s| s.as_object_mut()) {
        selection.insert("residentKey".into(), "required".into());
        selection.insert("requireResidentKey".into(), true.into());
    }
    Ok(public_key)
}

/// Finishes the signed-in user's registration with the browser's
/// `credential.toJSON()`.
pub async fn register_finish(
    state: &AppState,
    user: &LiveUser,
    credential: serde_json::Value,
    name: &str,
    client: &ClientInfo,
) -> Result<PasskeyInfo, PasskeyError> {
    let webauthn = webauthn(state)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(PasskeyError::InvalidName);
    }
    let account = user.account();
    let now = state.clock.now();
    let saved = store::passkeys::take_ceremony(&state.db, Purpose::Register, None, Some(account.id), now)
        .await?
        .ok_or(PasskeyError::InvalidChallenge)?;
    let registration: PasskeyRegistration =
        serde_json::from_str(&saved).map_err(|e| anyhow::anyhow!("a stored registration does not read back: {e}"))?;
    let credential: RegisterPublicKeyCredential =
        serde_json::from_value(credential).map_err(|_| PasskeyError::Refused)?;
    let passkey = webauthn.finish_passkey_registration(&credential, &registration).map_err(|e| {
        tracing::info!(user_id = %account.id, error = %e, "a passkey registration was refused");
        PasskeyError::Refused
    })?;
    let credential_id: &[u8] = passkey.cred_id().as_ref();
    let new = NewPasskey {
        user_id: account.id,
        credential_id: credential_id.to_vec(),
        credential: json(&passkey)?,
        name: name.to_string(),
    };
    let stored = store::passkeys::insert(&state.db, new, now).await?.ok_or(PasskeyError::Refused)?;
    let holder = Holder { user_id: account.id, email_key: &account.email_key };
    notify(state, holder, events::kind::PASSKEY_ADDED, Some(MailKind::PasskeyAdded), client).await?;
    tracing::info!(user_id = %account.id, passkey_id = %stored.id, "passkey added");
    Ok(stored.into())
}

pub async fn list(state: &AppState, user: &LiveUser) -> Result<Vec<PasskeyInfo>, Fault> {
    Ok(store::passkeys::list(&state.db, user.user_id()).await?.into_iter().map(Into::into).collect())
}

/// Removes one of the signed-in user's passkeys, after re-authentication.
pub async fn remove(
    state: &AppState,
    user: &LiveUser,
    id: Uuid,
    password: Option<&Password>,
    client: &ClientInfo,
) -> Result<(), PasskeyError> {
    account::reauthenticate(state, user, password).await?;
    let account = user.account();
    if !store::passkeys::delete(&state.db, account.id, id).await? {
        return Err(PasskeyError::NotFound);
    }
    let holder = Holder { user_id: account.id, email_key: &account.email_key };
    notify(state, holder, events::kind::PASSKEY_REMOVED, Some(MailKind::PasskeyRemoved), client).await?;
    tracing::info!(user_id = %account.id, passkey_id = %id, "passkey removed");
    Ok(())
}

/// A passwordless sign-in under way: its id and the request options for
/// the browser (no credential listed: the authenticator offers its own).
pub struct SignInStarted {
    pub challenge_id: Uuid,
    pub public_key: serde_json::Value,
}

pub async fn sign_in_start(state: &AppState, client: &ClientInfo) -> Result<SignInStarted, PasskeyError> {
    let webauthn = webauthn(state)?;
    let now = state.clock.now();
    // Each start stores a row: counted like a login attempt, per client IP.
    state.limits.hit(&state.db, Rule::LoginPerIp, client.ip_or_unknown(), now).await?;
    let (options, authentication) =
        webauthn.start_discoverable_authentication().map_err(|e| anyhow::anyhow!("starting a passkey sign-in: {e}"))?;
    let saved = json(&authentication)?;
    let challenge_id =
        store::passkeys::save_ceremony(&state.db, Purpose::SignIn, None, saved, now, now + CEREMONY_TTL).await?;
    let public_key = serde_json::to_value(&options.public_key).map_err(anyhow::Error::from)?;
    Ok(SignInStarted { challenge_id, public_key })
}

/// Finishes a passwordless sign-in with the browser's `credential.toJSON()`:
/// a session whose `amr` is `hwk` and `mfa` (a passkey is something held
/// and, verified by the authenticator, someone present).
pub async fn sign_in_finish(
    state: &AppState,
    challenge_id: Uuid,
    credential: serde_json::Value,
    client: ClientInfo,
) -> Result<IssuedTokens, PasskeyError> {
    let webauthn = webauthn(state)?;
    let now = state.clock.now();
    let saved = store::passkeys::take_ceremony(&state.db, Purpose::SignIn, Some(challenge_id), None, now)
        .await?
        .ok_or(PasskeyError::InvalidChallenge)?;
    let authentication: DiscoverableAuthentication =
        serde_json::from_str(&saved).map_err(|e| anyhow::anyhow!("a stored sign-in does not read back: {e}"))?;
    let credential: PublicKeyCredential = serde_json::from_value(credential).map_err(|_| PasskeyError::Refused)?;
    let (user_handle, credential_id) =
        webauthn.identify_discoverable_authentication(&credential).map_err(|_| PasskeyError::Refused)?;
    let Some(stored) = store::passkeys::find_by_credential(&state.db, credential_id).await? else {
        tracing::info!("a passkey sign-in with an unknown (or removed) credential was refused");
        return Err(PasskeyError::Refused);
    };
    if stored.user_id != user_handle {
        tracing::warn!(user_id = %stored.user_id, "a passkey sign-in named another user's handle; refused");
        return Err(PasskeyError::Refused);
    }
    let mut passkey: Passkey = serde_json::from_str(&stored.credential)
        .map_err(|e| anyhow::anyhow!("a stored passkey does not read back: {e}"))?;
    let result = webauthn.finish_discoverable_authentication_v2(&credential, authentication, &passkey).map_err(|e| {
        tracing::warn!(user_id = %stored.user_id, passkey_id = %stored.id, error = %e, "a passkey sign-in was refused");
        PasskeyError::Refused
    })?;
    passkey.update_credential(&result);
    let counter = i64::from(result.counter());
    if !store::passkeys::record_use(&state.db, stored.id, json(&passkey)?, counter, now).await? {
        tracing::warn!(
            user_id = %stored.user_id, passkey_id = %stored.id, counter,
            "a passkey's signature counter did not go up (a cloned authenticator?); refused"
        );
        return Err(PasskeyError::Refused);
    }
    let user = store::users::find_by_id(&state.db, stored.user_id).await?.ok_or(PasskeyError::Refused)?;
    let amr = if result.user_verified() { "hwk mfa" } else { "hwk" };
    let mut tokens = session::start(state, &user, amr, client).await?;
    tokens.onboarding_required = Some(!store::profiles::exists(&state.db, user.id).await?);
    crate::observe::metrics::login("passkey", "ok");
    Ok(tokens)
}
