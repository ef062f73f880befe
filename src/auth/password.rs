//! argon2id hashing off the async executor, through a bounded pool so a flood
//! of logins queues instead of starving refreshes and JWKS of CPU.

use std::sync::{Arc, Mutex, OnceLock, mpsc};

use anyhow::Context;
use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordVerifier, Version,
    password_hash::{PasswordHasher as _, SaltString, rand_core::OsRng},
};
use tokio::sync::oneshot;

use crate::secret::Password;

/// OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane. Public so the
/// benchmark measures the machine's ceiling with exactly these parameters.
pub fn argon2() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

type Job = Box<dyn FnOnce() + Send>;

/// Hashes and verifies passwords on a fixed pool of threads that run at a
/// lower CPU priority (nice 10) than the async workers and the database: a
/// flood of logins uses whatever CPU is idle, queues for the rest, and never
/// starves refreshes or JWKS. A fixed pool also bounds memory: each thread
/// needs argon2's 19 MiB only while it hashes.
#[derive(Clone)]
pub struct PasswordHasher {
    jobs: mpsc::Sender<Job>,
}

impl PasswordHasher {
    pub fn new(threads: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let next = queue.lock().map(|q| q.recv());
                        match next {
                            Ok(Ok(job)) => job(),
                            _ => break, // every sender is gone: shut down
                        }
                    }
                })
                .expect("spawning a hashing thread");
        }
        // Computed now, so the first unknown-user login costs one hash like any other.
        dummy_hash();
        Self { jobs }
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
        let (reply, answer) = oneshot::channel();
        let span = tracing::Span::current();
        self.jobs
            .send(Box::new(move || {
                let _ = reply.send(span.in_scope(job));
            }))
            .map_err(|_| anyhow::anyhow!("the hashing pool has stopped"))?;
        answer.await.context("a hashing thread failed")?
    }
}

/// Nice 10 for the calling thread (on Linux the nice value is per thread).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority on our own thread id has no memory-safety preconditions.
    unsafe {
        let tid = libc::gettid();
        if libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10) != 0 {
            tracing::debug!("could not lower the hashing thread's priority");
        }
    }
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        argon2().hash_password(b"latchkey-dummy-password", &salt).expect("hashing a constant works").to_string()
    })
}
