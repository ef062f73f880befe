//! Rotation rules 2 and 3 (README "Tokens"): a refresh token that did not
//! rotate is a retry, a reuse, or simply no good. The decision is a pure
//! function of what the database says about the token, the time and the
//! grace window, so its rules are tested without a database or a clock.

use chrono::{DateTime, Duration, Utc};

/// What the database says about a presented token that did not rotate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// When it was used; `None` if it never was (then it expired, or its
    /// session is over).
    pub used_at: Option<DateTime<Utc>>,
    /// The session is neither revoked nor past its absolute cap.
    pub session_live: bool,
    /// Its recorded successor is the one this token derives.
    pub successor_matches: bool,
    pub successor_used: bool,
    pub successor_expires_at: Option<DateTime<Utc>>,
}

/// What to do with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A retry inside the grace window: answer with the same successor again.
    Retry { successor_expires_at: DateTime<Utc> },
    /// A spent token presented again: the session is revoked.
    Reuse,
    /// Unknown to any live session: refuse, change nothing.
    Invalid,
}

pub fn judge(seen: Seen, now: DateTime<Utc>, grace: Duration) -> Verdict {
    let Some(used_at) = seen.used_at else {
        return Verdict::Invalid;
    };
    if !seen.session_live {
        return Verdict::Invalid;
    }
    let in_grace = now - used_at <= grace;
    match seen.successor_expires_at {
        Some(successor_expires_at) if in_grace && seen.successor_matches && !seen.successor_used => {
            Verdict::Retry { successor_expires_at }
        }
        _ => Verdict::Reuse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::seconds(10);

    fn used(ago_secs: i64, now: DateTime<Utc>) -> Seen {
        Seen {
            used_at: Some(now - Duration::seconds(ago_secs)),
            session_live: true,
            successor_matches: true,
            successor_used: false,
            successor_expires_at: Some(now + Duration::days(7)),
        }
    }

    #[test]
    fn a_repeat_inside_the_grace_window_is_a_retry() {
        let now = Utc::now();
        let retry = Verdict::Retry { successor_expires_at: now + Duration::days(7) };
        assert_eq!(judge(used(0, now), now, GRACE), retry);
        assert_eq!(judge(used(10, now), now, GRACE), retry, "the window's last second still counts");
    }

    #[test]
    fn a_repeat_after_the_grace_window_is_reuse() {
        let now = Utc::now();
        assert_eq!(judge(used(11, now), now, GRACE), Verdict::Reuse);
        assert_eq!(judge(used(3600, now), now, Duration::zero()), Verdict::Reuse);
    }

    #[test]
    fn once_the_successor_was_used_even_a_prompt_repeat_is_reuse() {
        let now = Utc::now();
        assert_eq!(judge(Seen { successor_used: true, ..used(1, now) }, now, GRACE), Verdict::Reuse);
        assert_eq!(judge(Seen { successor_matches: false, ..used(1, now) }, now, GRACE), Verdict::Reuse);
        assert_eq!(judge(Seen { successor_expires_at: None, ..used(1, now) }, now, GRACE), Verdict::Reuse);
    }

    #[test]
    fn a_session_past_its_cap_or_revoked_answers_invalid_and_revokes_nothing() {
        let now = Utc::now();
        assert_eq!(judge(Seen { session_live: false, ..used(1, now) }, now, GRACE), Verdict::Invalid);
        assert_eq!(judge(Seen { session_live: false, ..used(3600, now) }, now, GRACE), Verdict::Invalid);
    }

    #[test]
    fn a_token_never_used_did_not_rotate_because_it_expired() {
        let now = Utc::now();
        assert_eq!(judge(Seen { used_at: None, ..used(0, now) }, now, GRACE), Verdict::Invalid);
    }
}
