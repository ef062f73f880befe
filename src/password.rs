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

    /// A new PHC string for `password`. With a `like` hash, it gets that
    /// hash's salt and parameters, so one argon2 computation of a presented
    /// password checks it against both (see `verify_account`); without, a
    /// fresh salt and the current parameters.
    pub async fn hash(&self, password: &Password, like: Option<String>) -> anyhow::Result<String> {
        let password = password.clone();
        self.run(move || match like {
            Some(like) => hash_like(password.expose().as_bytes(), &Stored::parse(&like)?),
            None => hash_phc(password.expose().as_bytes()),
        })
        .await
    }

    /// Checks `password` against an account's own hash and the hashes of
    /// passwords tried at sign-ups of its address. With neither (unknown
    /// user, or an account without a password) it verifies against a dummy
    /// hash, so the time taken does not reveal which case it was. They share one salt, so
    /// this is one argon2 computation however many there are — the same work
    /// as for an address with neither (a dummy hash), or with one.
    pub async fn verify_account(
        &self,
        password: &Password,
        owner: Option<String>,
        attempts: Vec<String>,
    ) -> anyhow::Result<Match> {
        let password = password.clone();
        // One line per password checked: what a burst made the server hash is in its log.
        tracing::debug!(target: "latchkey::hashing", "checking a password");
        self.run(move || {
            let candidates: Vec<(Match, Stored)> = owner
                .iter()
                .map(|phc| (Match::Owner, phc))
                .chain(attempts.iter().map(|phc| (Match::Attempt, phc)))
                .map(|(kind, phc)| Stored::parse(phc).map(|stored| (kind, stored)))
                .collect::<anyhow::Result<_>>()?;
            if candidates.is_empty() {
                let dummy = Stored::parse(dummy_hash())?;
                dummy.compute(password.expose().as_bytes())?;
                return Ok(Match::None);
            }
            let mut computed: Vec<(&Stored, Output)> = Vec::new();
            let mut found = Match::None;
            for (kind, stored) in &candidates {
                let output = match computed.iter().find(|(seen, _)| seen.same_inputs(stored)) {
                    Some((_, output)) => *output,
                    None => {
                        let output = stored.compute(password.expose().as_bytes())?;
                        computed.push((stored, output));
                        output
                    }
                };
                // `Output` compares in constant time; every candidate is compared.
                if output == stored.expected && found == Match::None {
                    found = *kind;
                }
            }
            Ok(found)
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

/// Which hash a presented password matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    None,
    /// The account's own password.
    Owner,
    /// A password tried at a sign-up of the account's (taken) address.
    Attempt,
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

/// A PHC string for `password` with the salt, parameters and output length of `like`.
fn hash_like(password: &[u8], like: &Stored) -> anyhow::Result<String> {
    let output = like.compute(password)?;
    let salt = SaltString::from_b64(&like.salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let phc = PasswordHash {
        algorithm: like.algorithm.ident(),
        version: Some(like.version.into()),
        params: like.params.clone().try_into().map_err(|e| anyhow::anyhow!("params: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// A stored PHC string, parsed: what to compute and what to expect.
struct Stored {
    algorithm: Algorithm,
    version: Version,
    params: Params,
    /// The salt as the PHC string has it (B64).
    salt: String,
    expected: Output,
}

impl Stored {
    fn parse(phc: &str) -> anyhow::Result<Self> {
        let parsed = PasswordHash::new(phc).map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
        let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|e| anyhow::anyhow!("algorithm: {e}"))?;
        let version = parsed.version.map(Version::try_from).transpose().map_err(|e| anyhow::anyhow!("version: {e}"))?;
        let params = Params::try_from(&parsed).map_err(|e| anyhow::anyhow!("params: {e}"))?;
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            anyhow::bail!("stored hash lacks salt or output");
        };
        Ok(Self { algorithm, version: version.unwrap_or_default(), params, salt: salt.as_str().into(), expected })
    }

    /// Whether computing for `other` is computing for this one: same salt, parameters and length.
    fn same_inputs(&self, other: &Stored) -> bool {
        self.algorithm == other.algorithm
            && self.version == other.version
            && self.params == other.params
            && self.salt == other.salt
            && self.expected.len() == other.expected.len()
    }

    /// argon2 of `password` with this hash's salt and parameters.
    fn compute(&self, password: &[u8]) -> anyhow::Result<Output> {
        let salt = Salt::from_b64(&self.salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
        let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
        let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
        let hasher = Argon2::new(self.algorithm, self.version, self.params.clone());
        let mut out = vec![0u8; self.expected.len()];
        with_blocks(hasher.params().block_count(), |blocks| {
            hasher.hash_password_into_with_memory(password, salt_bytes, &mut out, blocks)
        })
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
        Output::new(&out).map_err(|e| anyhow::anyhow!("output: {e}"))
    }
}

/// Whether `password` matches a stored PHC string, with the parameters it records.
#[cfg(test)]
fn verify_phc(password: &[u8], phc: &str) -> anyhow::Result<bool> {
    let stored = Stored::parse(phc)?;
    Ok(stored.compute(password)? == stored.expected)
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

    #[test]
    fn a_hash_like_another_shares_its_salt_and_parameters_only() {
        let owner = hash_phc(b"Owner1Password").unwrap();
        let attempt = hash_like(b"Squatter9Guess", &Stored::parse(&owner).unwrap()).unwrap();
        let (o, a) = (Stored::parse(&owner).unwrap(), Stored::parse(&attempt).unwrap());
        assert!(o.same_inputs(&a), "{owner} / {attempt}");
        assert_ne!(o.expected, a.expected);
        assert!(verify_phc(b"Squatter9Guess", &attempt).unwrap());
        assert!(!verify_phc(b"Owner1Password", &attempt).unwrap());
        // Older parameters are kept too.
        let old = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(19_456, 2, 1, None).unwrap())
            .hash_password(b"x", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        let like_old = hash_like(b"y", &Stored::parse(&old).unwrap()).unwrap();
        assert!(like_old.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{like_old}");
    }

    #[tokio::test]
    async fn one_check_tells_the_owner_password_from_a_sign_up_attempt() {
        let hasher = PasswordHasher::new(1);
        let owner = hasher.hash(&Password::new("Owner1Password"), None).await.unwrap();
        let attempt = hasher.hash(&Password::new("Squatter9Guess"), Some(owner.clone())).await.unwrap();
        for (presented, expected) in
            [("Owner1Password", Match::Owner), ("Squatter9Guess", Match::Attempt), ("Neither5OfThem", Match::None)]
        {
            let password = Password::new(presented);
            let found = hasher.verify_account(&password, Some(owner.clone()), vec![attempt.clone()]).await.unwrap();
            assert_eq!(found, expected, "{presented}");
        }
        let none = hasher.verify_account(&Password::new("x"), None, vec![]).await.unwrap();
        assert_eq!(none, Match::None);
    }
}
