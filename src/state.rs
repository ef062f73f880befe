use std::{ops::Deref, sync::Arc};

use ring::hmac;
use tokio::sync::Notify;

use crate::{
    config::Config,
    password::PasswordHasher,
    token::{KeyRingHandle, access::TokenSettings, verified::VerifiedTokens},
};

/// Everything a request may need, passed in rather than global, so tests run
/// in parallel each with their own. Cloning is one reference-count bump.
#[derive(Clone)]
pub struct AppState(Arc<State>);

pub struct State {
    pub config: Config,
    pub db: crate::store::Db,
    pub keys: KeyRingHandle,
    pub tokens: TokenSettings,
    /// Derives refresh-token successors.
    pub refresh_secret: hmac::Key,
    /// Seals TOTP secrets and keys recovery-code hashes.
    pub mfa_keys: crate::mfa::keys::MfaKeys,
    /// Passkeys (WebAuthn), unless the relying party cannot be set up.
    pub webauthn: Option<webauthn_rs::Webauthn>,
    pub hasher: PasswordHasher,
    /// Access tokens whose signature this process has already checked.
    pub verified: VerifiedTokens,
    /// Woken after a request queues mail, so the worker sends it at once.
    pub mail_queue: Arc<Notify>,
    /// The rate limits, and the key their subjects are stored under.
    pub limits: crate::limits::Limiter,
    /// Derives the nonce and PKCE verifier of a provider sign-in from its `state`.
    pub sign_in_key: hmac::Key,
    /// Proxies whose forwarding headers name the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Sign in with Google (or the configured OpenID provider), when configured.
    pub google: Option<crate::oidc::OidcProvider>,
    /// Cookie mode, CSRF and CORS settings.
    pub browser: Arc<crate::browser::Browser>,
    /// Where a provider sign-in may send the browser back to.
    pub redirects: crate::oidc::redirect::AllowList,
    /// The status lists this instance serves.
    pub status_lists: crate::status_lists::StatusLists,
    /// What time it is: the system's, or a test's.
    pub clock: Arc<dyn crate::clock::Clock>,
    /// The metrics recorder's handle, unless metrics are off.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl AppState {
    pub fn new(state: State) -> Self {
        Self(Arc::new(state))
    }
}

impl Deref for AppState {
    type Target = State;

    fn deref(&self) -> &State {
        &self.0
    }
}
