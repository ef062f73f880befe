//! The request id: taken from an incoming `X-Request-Id` when it is a
//! plain token (1–64 of `A–Z a–z 0–9 . _ -`), otherwise made here; in the
//! span of every log line of the request and in its answer.

use std::sync::{
    OnceLock,
    atomic::{AtomicU64, Ordering},
};

use rand_core::RngCore;

pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static CURRENT: String;
}

/// The id to use for a request that came with `incoming`.
pub fn choose(incoming: Option<&str>) -> String {
    match incoming {
        Some(id) if valid(id) => id.to_string(),
        _ => generate(),
    }
}

fn valid(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// A random prefix drawn once per process, then a counter: unique, and
/// without a system call per request (an id is not a secret).
fn generate() -> String {
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| rand_core::OsRng.next_u64());
    format!("{prefix:016x}{:016x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Runs `work` as the request `id`: `current` answers it inside.
pub async fn scope<F: std::future::Future>(id: String, work: F) -> F::Output {
    CURRENT.scope(id, work).await
}

/// The id of the request being answered, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ids_are_kept_and_anything_else_replaced() {
        assert_eq!(choose(Some("abc-123_X.y")), "abc-123_X.y");
        for bad in ["", "a b", "a\nb", "é", "a\"b", &"x".repeat(65), "<script>"] {
            let chosen = choose(Some(bad));
            assert_ne!(chosen, bad);
            assert!(valid(&chosen) && chosen.len() == 32, "{chosen}");
        }
        assert_ne!(choose(None), choose(None));
    }
}
