//! Rate limits (SPEC §8), counted in the database so every instance shares
//! them. Subjects (addresses, IPs) are stored only as SHA-256 hashes.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ring::digest;

use crate::{AppState, Config, store::rate_limits};

/// What is limited, per what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Failed logins per account (address): failures drive it, a success clears it.
    LoginFailuresPerAccount,
    /// Login attempts per client IP.
    LoginPerIp,
    /// Sign-ups per client IP.
    SignupPerIp,
    /// Verification resends and reset requests per address.
    MailPerAddress,
    /// Verification resends and reset requests per client IP.
    MailPerIp,
}

impl Rule {
    fn name(self) -> &'static str {
        match self {
            Rule::LoginFailuresPerAccount => "login-account",
            Rule::LoginPerIp => "login-ip",
            Rule::SignupPerIp => "signup-ip",
            Rule::MailPerAddress => "mail-address",
            Rule::MailPerIp => "mail-ip",
        }
    }

    fn limit(self, c: &Config) -> u32 {
        match self {
            Rule::LoginFailuresPerAccount => c.rate_limit_login_per_account,
            Rule::LoginPerIp => c.rate_limit_login_per_ip,
            Rule::SignupPerIp => c.rate_limit_signup_per_ip,
            Rule::MailPerAddress => c.rate_limit_mail_per_address,
            Rule::MailPerIp => c.rate_limit_mail_per_ip,
        }
    }

    fn window(self, c: &Config) -> u64 {
        match self {
            Rule::LoginFailuresPerAccount | Rule::LoginPerIp => c.rate_limit_login_window_secs,
            Rule::SignupPerIp => c.rate_limit_signup_window_secs,
            Rule::MailPerAddress | Rule::MailPerIp => c.rate_limit_mail_window_secs,
        }
    }
}

/// Over the limit: how many were allowed, and when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub limit: u32,
    pub retry_after: Duration,
}

fn key(rule: Rule, subject: &str) -> String {
    let hash = digest::digest(&digest::SHA256, subject.as_bytes());
    let hex: String = hash.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("{}:{hex}", rule.name())
}

fn window(secs: u64) -> chrono::Duration {
    chrono::Duration::seconds(secs as i64)
}

fn limited(limit: u32, started: DateTime<Utc>, window_secs: u64, now: DateTime<Utc>) -> Limited {
    let left = (started + window(window_secs) - now).num_milliseconds().max(0) as u64;
    Limited { limit, retry_after: Duration::from_secs(left.div_ceil(1000).max(1)) }
}

/// Counts one request of `subject` under `rule`; `Err(Limited)` when this
/// one is over the limit.
pub async fn hit(state: &AppState, rule: Rule, subject: &str) -> anyhow::Result<Result<(), Limited>> {
    let c = &state.config;
    if !c.rate_limit_enabled {
        return Ok(Ok(()));
    }
    let now = Utc::now();
    let w = rate_limits::hit(&state.db, &key(rule, subject), now, window(rule.window(c))).await?;
    let limit = rule.limit(c);
    Ok(if w.count > limit { Err(limited(limit, w.started, rule.window(c), now)) } else { Ok(()) })
}

/// Whether `subject` has used up `rule` already, without counting.
pub async fn peek(state: &AppState, rule: Rule, subject: &str) -> anyhow::Result<Result<(), Limited>> {
    let c = &state.config;
    if !c.rate_limit_enabled {
        return Ok(Ok(()));
    }
    let now = Utc::now();
    let limit = rule.limit(c);
    Ok(match rate_limits::peek(&state.db, &key(rule, subject), now, window(rule.window(c))).await? {
        Some(w) if w.count >= limit => Err(limited(limit, w.started, rule.window(c), now)),
        _ => Ok(()),
    })
}

/// Forgets `subject`'s count under `rule`.
pub async fn clear(state: &AppState, rule: Rule, subject: &str) -> anyhow::Result<()> {
    if state.config.rate_limit_enabled {
        rate_limits::clear(&state.db, &key(rule, subject)).await?;
    }
    Ok(())
}

/// Counts one refresh against the session of the presented token.
pub async fn hit_refresh(state: &AppState, token_hash: &[u8]) -> anyhow::Result<Result<(), Limited>> {
    let c = &state.config;
    if !c.rate_limit_enabled {
        return Ok(Ok(()));
    }
    let now = Utc::now();
    let secs = c.rate_limit_refresh_window_secs;
    let limit = c.rate_limit_refresh_per_session;
    Ok(match rate_limits::hit_refresh(&state.db, token_hash, now, window(secs)).await? {
        Some((_, w)) if w.count > limit => Err(limited(limit, w.started, secs, now)),
        _ => Ok(()),
    })
}
