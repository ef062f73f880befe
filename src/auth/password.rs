//! argon2id hashing off the async executor, on a fixed pool of idle-priority
//! threads, so a flood of logins queues instead of starving refreshes and JWKS.

use std::{
    cell::RefCell,
    sync::{Arc, Mutex, OnceLock, mpsc},
};

use anyhow::Context;
use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, PasswordHasher as _, Version,
    password_hash::{Output, Salt, SaltString, rand_core::OsRng},
};
use tokio::sync::oneshot;

use crate::secret::Password;

/// argon2id with 12 MiB, 3 passes, 1 lane: one of the configurations the
/// OWASP Password Storage Cheat Sheet lists as equally strong as its
/// 19 MiB / 2 passes baseline. It costs the same CPU per hash with a third
/// less memory, which is what bounds a login burst's resident size (one
/// working area per hashing thread). Stored hashes carry their parameters,
/// so hashes made with others still verify. Public so the benchmark
/// measures the machine's ceiling with exactly these parameters.
pub fn argon2() -> Argon2<'static> {
    let params = Params::new(12_288, 3, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

type Job = Box<dyn FnOnce() + Send>;

/// Hashes and verifies passwords on a fixed pool of threads scheduled
/// `SCHED_IDLE`: they get only CPU time that the async workers and the
/// database do not want. A flood of logins uses every idle cycle and queues
/// for the rest, and never starves refreshes or JWKS. A fixed pool also
/// bounds memory: one argon2 working area (12 MiB) per thread, given back
/// after a quiet spell.
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
                        let next = queue.lock().map(|q| q.recv_timeout(IDLE_RELEASE));
                        match next {
                            Ok(Ok(job)) => job(),
                            // Quiet for a while: give argon2's memory back.
                            Ok(Err(mpsc::RecvTimeoutError::Timeout)) => release_blocks(),
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
        self.run(move || hash_phc(password.expose().as_bytes())).await
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
            let matches = verify_phc(password.expose().as_bytes(), &phc)?;
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

/// Puts the calling thread in `SCHED_IDLE`: it runs only on CPU time nothing
/// else wants (falling back to nice 19 where that policy is refused).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: these calls only change the scheduling of our own thread.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
            let tid = libc::gettid();
            if libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19) != 0 {
                tracing::debug!("could not lower the hashing thread's priority");
            }
        }
    }
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        // The allocating path: this runs once, on whichever thread gets here first.
        let salt = SaltString::generate(&mut OsRng);
        let phc = argon2().hash_password(b"latchkey-dummy-password", &salt).expect("hashing a constant works");
        phc.to_string()
    })
}

/// How long a hashing thread keeps argon2's memory with nothing to do.
const IDLE_RELEASE: std::time::Duration = std::time::Duration::from_secs(10);

fn release_blocks() {
    BLOCKS.with(|blocks| *blocks.borrow_mut() = Vec::new());
}

thread_local! {
    /// argon2's working memory, kept by each hashing thread between hashes:
    /// allocating and faulting in the working area per hash costs about a third of the hash.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

fn with_blocks<T>(count: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
    BLOCKS.with(|blocks| {
        let mut blocks = blocks.borrow_mut();
        if blocks.len() < count {
            blocks.resize(count, Block::default());
        }
        f(&mut blocks[..count])
    })
}

/// An argon2id PHC string for `password` with a fresh salt.
fn hash_phc(password: &[u8]) -> anyhow::Result<String> {
    let hasher = argon2();
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    with_blocks(hasher.params().block_count(), |blocks| {
        hasher.hash_password_into_with_memory(password, salt_bytes, &mut out, blocks)
    })
    .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: hasher.params().try_into().map_err(|e| anyhow::anyhow!("params: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("output: {e}"))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches a stored PHC string, with the parameters it records.
fn verify_phc(password: &[u8], phc: &str) -> anyhow::Result<bool> {
    let parsed = PasswordHash::new(phc).map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|e| anyhow::anyhow!("algorithm: {e}"))?;
    let version = parsed.version.map(Version::try_from).transpose().map_err(|e| anyhow::anyhow!("version: {e}"))?;
    let params = Params::try_from(&parsed).map_err(|e| anyhow::anyhow!("params: {e}"))?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        anyhow::bail!("stored hash lacks salt or output");
    };
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let hasher = Argon2::new(algorithm, version.unwrap_or_default(), params);
    let mut out = vec![0u8; expected.len()];
    with_blocks(hasher.params().block_count(), |blocks| {
        hasher.hash_password_into_with_memory(password, salt_bytes, &mut out, blocks)
    })
    .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
    // `Output` compares in constant time.
    Ok(Output::new(&out).map_err(|e| anyhow::anyhow!("output: {e}"))? == expected)
}

#[cfg(test)]
mod tests {
    use argon2::PasswordVerifier as _;

    use super::*;

    #[test]
    fn phc_round_trips_and_matches_the_argon2_crate() {
        let phc = hash_phc(b"Correct1Horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=12288,t=3,p=1$"), "{phc}");
        assert!(verify_phc(b"Correct1Horse", &phc).unwrap());
        assert!(!verify_phc(b"Correct1Horsf", &phc).unwrap());
        // Interoperable both ways with the crate's own PHC handling.
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(argon2().verify_password(b"Correct1Horse", &parsed).is_ok());
        let theirs = argon2().hash_password(b"x", &SaltString::generate(&mut OsRng)).unwrap().to_string();
        assert!(verify_phc(b"x", &theirs).unwrap());
    }
}
