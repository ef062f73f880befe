use std::sync::Arc;

use ring::hmac;
use sea_orm::DatabaseConnection;

use crate::{
    auth::PasswordHasher,
    config::Config,
    token::{KeyRingHandle, access::TokenSettings},
};

/// Everything a request may need, passed in rather than global, so tests run
/// in parallel each with their own.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: DatabaseConnection,
    pub keys: KeyRingHandle,
    pub tokens: Arc<TokenSettings>,
    /// Derives refresh-token successors.
    pub refresh_secret: Arc<hmac::Key>,
    pub hasher: PasswordHasher,
}
