//! Sign in with Google, or with any OpenID Connect provider given its issuer.
//!
//! 1. `begin`: a single-use `state`, a `nonce` and a PKCE S256 pair are made
//!    and remembered (hashed state, 10 minutes); the browser goes to the
//!    provider.
//! 2. `callback`: the state is taken (once), the code redeemed with the PKCE
//!    verifier, the ID token checked, the account found, linked or created,
//!    and the browser sent back to the app with a one-time login code
//!    (60 s, stored hashed). Any failure sends it back with `error` instead,
//!    and changes nothing.
//! 3. `exchange`: the app trades the login code for tokens.

use chrono::{DateTime, Duration, Utc};
use oauth2::{PkceCodeChallenge, PkceCodeVerifier};
use sea_orm::TransactionTrait;
use url::Url;
use uuid::Uuid;

use crate::oidc::{AuthorizationRequest, Identity, OidcProvider, ProviderError, redirect};
use crate::{
    AppState,
    auth::validate,
    client::ClientInfo,
    fault::{Fault, carries_fault},
    limits::Rule,
    mfa::challenge::{self, MfaRequired},
    session::{self, IssuedTokens},
    store::{
        email_tokens, events, oauth as store, profiles, sessions,
        users::{self, Inserted, NewUser},
    },
    token::{link::Purpose, opaque},
};

/// The provider's name in paths, sessions (`amr`) and links.
pub const GOOGLE: &str = "google";
const STATE_TTL: Duration = Duration::minutes(10);
const LOGIN_CODE_TTL: Duration = Duration::seconds(60);
const LOGIN_CODE_PREFIX: &str = "lk_oc_";

/// Why a sign-in did not finish; `code()` is the `error` parameter the app receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The person declined at the provider.
    AccessDenied,
    /// The provider sent the callback another error.
    ProviderError,
    /// Unknown, used or expired `state`.
    InvalidState,
    /// The callback's `iss` is not the configured provider (a mix-up).
    IssuerMismatch,
    /// The provider refused the code: used already, expired, or not issued for this sign-in.
    InvalidGrant,
    /// The ID token belongs to another sign-in.
    NonceMismatch,
    /// The ID token failed a check, or lacks an email address.
    InvalidIdToken,
    /// The provider does not vouch for the address.
    EmailNotVerified,
    /// The provider could not be reached, or answered with something unusable.
    ProviderUnavailable,
    /// latchkey could not store the sign-in (its database failed).
    ServerError,
}

impl Failure {
    pub fn code(self) -> &'static str {
        match self {
            Failure::AccessDenied => "access_denied",
            Failure::ProviderError => "provider_error",
            Failure::InvalidState => "invalid_state",
            Failure::IssuerMismatch => "issuer_mismatch",
            Failure::InvalidGrant => "invalid_grant",
            Failure::NonceMismatch => "nonce_mismatch",
            Failure::InvalidIdToken => "invalid_id_token",
            Failure::EmailNotVerified => "email_not_verified",
            Failure::ProviderUnavailable => "provider_unavailable",
            Failure::ServerError => "server_error",
        }
    }
}

impl From<&ProviderError> for Failure {
    fn from(e: &ProviderError) -> Self {
        match e {
            ProviderError::Unavailable(_) => Failure::ProviderUnavailable,
            ProviderError::Rejected(_) => Failure::InvalidGrant,
            ProviderError::InvalidIdToken(_) => Failure::InvalidIdToken,
            ProviderError::NonceMismatch => Failure::NonceMismatch,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("this provider is not configured")]
    NotConfigured,
    #[error("redirect_to is not an allowed app URL")]
    InvalidRedirect,
    #[error("code_challenge must be an S256 challenge (43 base64url characters)")]
    InvalidChallenge,
    /// No safe place to send the browser back to.
    #[error("sign-in failed: {}", .0.code())]
    NoRedirect(Failure),
    #[error("unknown, expired or used login code")]
    InvalidCode,
    /// The account has a second factor: the exchange ends in its challenge.
    #[error("a second factor is required")]
    MfaRequired(MfaRequired),
    #[error(transparent)]
    Fault(Fault),
}

carries_fault!(SignInError);

fn failed(failure: Failure, detail: &dyn std::fmt::Display, client: &ClientInfo) {
    tracing::warn!(
        provider = GOOGLE,
        error = failure.code(),
        ip = client.ip_or_unknown(),
        "sign-in with {GOOGLE} failed ({}): {detail}",
        failure.code()
    );
    crate::observe::metrics::login(GOOGLE, failure.code());
}

fn random_value() -> String {
    opaque::encode("", &opaque::random())
}

/// The nonce and PKCE verifier of a sign-in, derived from its `state` with a
/// server secret: nothing stored while the sign-in is under way can finish
/// it (the database holds only the state's hash), and neither value can be
/// worked out from the state the provider and the browser see.
struct Derived {
    nonce: String,
    pkce_verifier: String,
}

impl Derived {
    fn of(key: &ring::hmac::Key, state: &str) -> Self {
        let derive = |purpose: &str| {
            let tag = ring::hmac::sign(key, format!("{purpose}:{state}").as_bytes());
            opaque::encode("", tag.as_ref().try_into().expect("HMAC-SHA256 is 32 bytes"))
        };
        Self { nonce: derive("nonce"), pkce_verifier: derive("pkce") }
    }
}

/// A started sign-in: where to send the browser, and the `state` to bind to
/// it (none when the provider could not be reached and the browser goes
/// straight back).
pub struct Started {
    pub url: Url,
    pub state: Option<String>,
}

/// What an app asks for when it starts a sign-in.
pub struct Begin<'a> {
    pub redirect_to: &'a str,
    /// The app's own PKCE S256 challenge, if it binds the login code to itself.
    pub code_challenge: Option<&'a str>,
    pub code_challenge_method: Option<&'a str>,
}

/// The S256 PKCE challenge of `verifier`: base64url(SHA-256(verifier)).
pub fn s256(verifier: &str) -> String {
    opaque::encode("", &opaque::hash_text(verifier).try_into().expect("SHA-256 is 32 bytes"))
}

/// Starts a sign-in: where to send the browser. A provider that cannot be
/// reached sends it straight back to the app with `error=provider_unavailable`.
/// Each start writes a row and may call the provider, so it counts as a login
/// attempt of the client's IP.
pub async fn begin(state: &AppState, request: Begin<'_>, client: &ClientInfo) -> Result<Started, SignInError> {
    let provider = state.google.as_ref().ok_or(SignInError::NotConfigured)?;
    let now = state.clock.now();
    state.limits.hit(&state.db, Rule::LoginPerIp, client.ip_or_unknown(), now).await?;
    let back = state.redirects.check(request.redirect_to).ok_or(SignInError::InvalidRedirect)?;
    let well_formed = |c: &str| c.len() == 43 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let app_code_challenge = match (request.code_challenge, request.code_challenge_method) {
        (None, None) => None,
        (Some(c), None | Some("S256")) if well_formed(c) => Some(c.to_string()),
        _ => return Err(SignInError::InvalidChallenge),
    };
    let state_value = random_value();
    let derived = Derived::of(&state.sign_in_key, &state_value);
    let pkce_challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(derived.pkce_verifier));
    let request = AuthorizationRequest { state: &state_value, nonce: &derived.nonce, pkce_challenge };
    let url = match provider.authorize_url(request).await {
        Ok(url) => url,
        Err(e) => {
            let failure = Failure::from(&e);
            failed(failure, &e, client);
            return Ok(Started { url: redirect::with_params(&back, &[("error", failure.code())]), state: None });
        }
    };
    let pending = store::PendingSignIn {
        hash: opaque::hash_text(&state_value),
        provider: GOOGLE.into(),
        redirect_to: back.to_string(),
        app_code_challenge,
        created_at: now,
        expires_at: now + STATE_TTL,
    };
    store::save_state(&state.db, pending).await?;
    Ok(Started { url, state: Some(state_value) })
}

/// The query the provider sends the browser back with.
#[derive(Debug, Default)]
pub struct Callback {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
    pub iss: Option<String>,
    /// The `state` remembered by the browser's sign-in cookie.
    pub bound_state: Option<String>,
}

/// Finishes a sign-in at the provider: where to send the browser (the app,
/// with `code` or `error`).
pub async fn callback(state: &AppState, query: Callback, client: &ClientInfo) -> Result<Url, SignInError> {
    let provider = state.google.as_ref().ok_or(SignInError::NotConfigured)?;
    // A sign-in finishes only in the browser that started it: otherwise
    // anyone could send a victim the callback URL of their own sign-in and
    // log the victim into the attacker's account.
    if query.state.is_none() || query.bound_state != query.state {
        failed(Failure::InvalidState, &"state missing, or not the one this browser started", client);
        return Err(SignInError::NoRedirect(Failure::InvalidState));
    }
    let now = state.clock.now();
    let hash = query.state.as_deref().map(opaque::hash_text);
    let pending = match &hash {
        Some(hash) => store::take_state(&state.db, GOOGLE, hash, now).await?,
        None => None,
    };
    let Some(pending) = pending else {
        failed(Failure::InvalidState, &"unknown, used or expired state", client);
        return Err(SignInError::NoRedirect(Failure::InvalidState));
    };
    let back = Url::parse(&pending.redirect_to).map_err(anyhow::Error::from)?;
    let derived = Derived::of(&state.sign_in_key, query.state.as_deref().unwrap_or_default());
    let outcome = finish(state, provider, &pending, &derived, query, client, now).await;
    Ok(match outcome {
        Ok(code) => {
            crate::observe::metrics::login(GOOGLE, "ok");
            redirect::with_params(&back, &[("code", &code)])
        }
        Err(failure) => redirect::with_params(&back, &[("error", failure.code())]),
    })
}

async fn finish(
    state: &AppState,
    provider: &OidcProvider,
    pending: &store::PendingSignIn,
    derived: &Derived,
    query: Callback,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<String, Failure> {
    let fail = |failure: Failure, detail: &dyn std::fmt::Display| {
        failed(failure, detail, client);
        failure
    };
    if let Some(error) = &query.error {
        let failure = if error == "access_denied" { Failure::AccessDenied } else { Failure::ProviderError };
        return Err(fail(failure, &format!("the provider answered {error:?}")));
    }
    if query.iss.as_deref().is_some_and(|iss| iss.trim_end_matches('/') != provider.issuer()) {
        return Err(fail(Failure::IssuerMismatch, &format!("callback iss {:?}", query.iss)));
    }
    let Some(code) = query.code.filter(|c| !c.is_empty()) else {
        return Err(fail(Failure::ProviderError, &"no code in the callback"));
    };
    let identity = match provider.redeem(&code, &derived.pkce_verifier, &derived.nonce).await {
        Ok(identity) => identity,
        Err(e) => return Err(fail(Failure::from(&e), &e)),
    };
    if !identity.email_verified {
        return Err(fail(Failure::EmailNotVerified, &format!("subject {} has no verified address", identity.subject)));
    }
    let Some(email) = identity.email.as_deref().and_then(|e| validate::email(e).ok()) else {
        return Err(fail(Failure::InvalidIdToken, &format!("subject {} has no usable address", identity.subject)));
    };
    match sign_in(state, &identity, email, pending.app_code_challenge.clone(), client, now).await {
        Ok(code) => Ok(code),
        Err(e) => {
            tracing::error!(error = %e, "storing a provider sign-in failed");
            Err(Failure::ServerError)
        }
    }
}

/// Finds, links or creates the account and stores a login code for it; one
/// transaction. Returns the code.
async fn sign_in(
    state: &AppState,
    identity: &Identity,
    email: validate::Email,
    code_challenge: Option<String>,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    // A concurrent sign-up or link of the same address can win a race; the
    // second attempt then finds what it made.
    for _ in 0..2 {
        let txn = state.db.begin().await?;
        let Some((user_id, is_new_user)) = link_account(&txn, identity, &email, client, now).await? else {
            txn.rollback().await?;
            continue;
        };
        let bytes = opaque::random();
        let code = store::NewLoginCode {
            hash: opaque::hash(&bytes),
            user_id,
            provider: GOOGLE.into(),
            is_new_user,
            expires_at: now + LOGIN_CODE_TTL,
            code_challenge: code_challenge.clone(),
        };
        store::save_code(&txn, code, now).await?;
        txn.commit().await?;
        return Ok(opaque::encode(LOGIN_CODE_PREFIX, &bytes));
    }
    anyhow::bail!("the account changed under two consecutive attempts")
}

/// The user this provider account signs in as, and whether it was created
/// now; `None` when a concurrent request got there first.
async fn link_account(
    db: &impl sea_orm::ConnectionTrait,
    identity: &Identity,
    email: &validate::Email,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<(Uuid, bool)>> {
    let origin = client.origin();
    if let Some(link) = store::find_identity(db, GOOGLE, &identity.subject).await? {
        store::touch_identity(db, GOOGLE, &identity.subject, &email.email, now).await?;
        return Ok(Some((link.user_id, false)));
    }
    let name = validate::name(identity.name.as_deref()).ok().flatten();
    let (user_id, is_new_user) = match users::find_by_email_key(db, &email.key).await? {
        Some(user) => {
            if user.email_verified_at.is_none() {
                // Whoever made this account never proved they own the
                // address; the provider just did. Nothing they set survives.
                users::claim_unverified(db, user.id, name, now).await?;
                crate::store::mfa::remove_totp(db, user.id).await?;
                crate::store::passkeys::delete_all(db, user.id).await?;
                let ended = sessions::revoke_all(db, user.id, None, now).await?;
                crate::observe::metrics::sessions_revoked(events::kind::PASSWORD_REMOVED, ended);
                for purpose in [Purpose::VerifyEmail, Purpose::ResetPassword] {
                    email_tokens::supersede_all(db, user.id, purpose, now).await?;
                }
                profiles::delete(db, user.id).await?;
                if user.password_hash.is_some() {
                    events::record(db, user.id, None, events::kind::PASSWORD_REMOVED, origin, now).await?;
                }
            }
            (user.id, false)
        }
        None => {
            let new = NewUser {
                email: email.email.clone(),
                email_key: email.key.clone(),
                password_hash: None,
                name,
                verified_at: Some(now),
            };
            match users::insert(db, new, now).await? {
                Inserted::Created(id) => {
                    events::record(db, id, None, events::kind::SIGNUP, origin, now).await?;
                    (id, true)
                }
                Inserted::EmailTaken => return Ok(None),
            }
        }
    };
    if !store::link(db, GOOGLE, &identity.subject, user_id, &email.email, now).await? {
        return Ok(None);
    }
    events::record(db, user_id, None, events::kind::IDENTITY_LINKED, origin, now).await?;
    Ok(Some((user_id, is_new_user)))
}

/// Tokens from a provider sign-in.
pub struct SignedIn {
    pub tokens: IssuedTokens,
    pub is_new_user: bool,
}

/// Trades a one-time login code for a session. A code presented a second
/// time is refused and the session its first use opened is revoked: the
/// code leaked, and whoever holds that session may not be the person.
/// A code bound to the app by a PKCE challenge needs its verifier; a
/// verifier with an unbound code means the app did not start this sign-in
/// (a code injected into its return URL), so that is refused too.
pub async fn exchange(
    state: &AppState,
    presented: &str,
    code_verifier: Option<&str>,
    client: ClientInfo,
) -> Result<SignedIn, SignInError> {
    let bytes = opaque::decode(LOGIN_CODE_PREFIX, presented.trim()).ok_or(SignInError::InvalidCode)?;
    let hash = opaque::hash(&bytes);
    let now = state.clock.now();
    let bound_to_caller = |code: &entity::oauth_login_code::Model| match (&code.code_challenge, code_verifier) {
        (None, None) => true,
        (Some(challenge), Some(verifier)) => s256(verifier) == *challenge,
        _ => false,
    };
    // Claim, session and the note of which session the code opened commit
    // together: a failure leaves the code unused, never burnt for nothing.
    let txn = state.db.begin().await?;
    match store::claim_code(&txn, &hash, now, bound_to_caller).await? {
        store::CodeUse::Claimed(code) => {
            let Some(user) = users::find_by_id(&txn, code.user_id).await? else {
                txn.rollback().await?;
                return Err(SignInError::InvalidCode);
            };
            if let Some(required) = challenge::require(&txn, state, &user, &code.provider).await? {
                txn.commit().await?;
                return Err(SignInError::MfaRequired(required));
            }
            let mut tokens = session::start_in(&txn, state, &user, &code.provider, client).await?;
            store::set_code_session(&txn, &hash, tokens.session_id).await?;
            tokens.onboarding_required = Some(!profiles::exists(&txn, user.id).await?);
            txn.commit().await?;
            Ok(SignedIn { tokens, is_new_user: code.is_new_user })
        }
        store::CodeUse::Replayed(seen) => {
            txn.rollback().await?;
            // A replay racing the first use waited for its commit: read the
            // code again to learn the session it opened.
            let code = store::find_code(&state.db, &hash).await?.unwrap_or(seen);
            if let Some(session_id) = code.session_id {
                let kind = events::kind::LOGIN_CODE_REUSED;
                sessions::revoke(&state.db, session_id, code.user_id, kind, client.origin(), now).await?;
            }
            tracing::warn!(user_id = %code.user_id, "provider login code presented again; its session was revoked");
            Err(SignInError::InvalidCode)
        }
        store::CodeUse::NotBound => {
            txn.rollback().await?;
            tracing::warn!("provider login code presented without its app's PKCE verifier; refused");
            Err(SignInError::InvalidCode)
        }
        store::CodeUse::Expired | store::CodeUse::Unknown => {
            txn.rollback().await?;
            Err(SignInError::InvalidCode)
        }
    }
}
