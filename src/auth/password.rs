//! argon2id hashing off the async executor, through a bounded pool so a flood
//! of logins queues instead of starving refreshes and JWKS of CPU.

use std::sync::{Arc, OnceLock};

use anyhow::Context;
use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordVerifier, Version,
    password_hash::{PasswordHasher as _, SaltString, rand_core::OsRng},
};
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::secret::Password;

/// OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane. Public so the
/// benchmark measures the machine's ceiling with exactly these parameters.
pub fn argon2() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes and verifies passwords on blocking threads, at most `permits` at once.
#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
}

impl PasswordHasher {
    pub fn new(concurrency: usize) -> Self {
        Self { permits: Arc::new(Semaphore::new(concurrency.max(1))) }
    }

    pub async fn hash(&self, password: &Password) -> anyhow::Result<String> {
        let password = password.clone();
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2()
                .hash_password(password.expose().as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
        })
        .await
    }

    /// Checks `password` against `stored`. With no stored hash (unknown user,
    /// or an account without a password) it verifies against a dummy hash, so
    /// the time taken does not reveal which case it was.
    pub async fn verify(&self, password: &Password, stored: Option<String>) -> anyhow::Result<bool> {
        let password = password.clone();
        self.run(move || {
            let (phc, real) = match stored {
                Some(phc) => (phc, true),
                None => (dummy_hash().to_string(), false),
            };
            let parsed = PasswordHash::new(&phc).map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
            let matches = argon2().verify_password(password.expose().as_bytes(), &parsed).is_ok();
            Ok(real && matches)
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let _permit = self.permits.acquire().await.context("hasher closed")?;
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(job))
            .instrument(tracing::Span::current())
            .await
            .context("hashing task failed")?
    }
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        argon2().hash_password(b"latchkey-dummy-password", &salt).expect("hashing a constant works").to_string()
    })
}
