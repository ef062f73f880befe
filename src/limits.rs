//! Rate limits (README "Abuse resistance"), counted in the database so every
//! instance shares them.
//!
//! Every limit is decided by one atomic statement that counts the attempt
//! and returns the new count: an attempt is counted *before* the work it
//! guards (a password check, a mail), so no burst, however timed, gets more
//! than the limit's number of attempts through. Subjects (addresses, IPs)
//! are stored only as an HMAC under a server secret: the table names no one,
//! and its keys cannot be recomputed from a list of addresses without it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ring::hmac;
use sea_orm::{ConnectionTrait, DbErr};

pub use crate::fault::Limited;
use crate::{config, fault::Fault, store::rate_limits};

/// What is limited, per what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Password checks per account (address), whatever endpoint makes them;
    /// a successful login clears it.
    LoginFailuresPerAccount,
    /// Login attempts (and provider sign-in starts) per client IP.
    LoginPerIp,
    /// Sign-ups per client IP.
    SignupPerIp,
    /// Sign-ups per address: each one mails the address.
    SignupPerAddress,
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
            Rule::SignupPerAddress => "signup-address",
            Rule::MailPerAddress => "mail-address",
            Rule::MailPerIp => "mail-ip",
        }
    }
}

/// A limit: so many per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u32,
    pub window_secs: u64,
}

/// The numbers of every rule, from the configuration.
#[derive(Debug, Clone)]
pub struct LimitSettings {
    pub enabled: bool,
    pub login_per_account: Quota,
    pub login_per_ip: Quota,
    pub signup_per_ip: Quota,
    pub signup_per_address: Quota,
    pub mail_per_address: Quota,
    pub mail_per_ip: Quota,
    pub refresh_per_session: Quota,
}

impl LimitSettings {
    pub fn from_config(c: &config::Limits) -> Self {
        let quota = |limit, window_secs| Quota { limit, window_secs };
        Self {
            enabled: c.rate_limit_enabled,
            login_per_account: quota(c.rate_limit_login_per_account, c.rate_limit_login_window_secs),
            login_per_ip: quota(c.rate_limit_login_per_ip, c.rate_limit_login_window_secs),
            signup_per_ip: quota(c.rate_limit_signup_per_ip, c.rate_limit_signup_window_secs),
            signup_per_address: quota(c.rate_limit_signup_per_address, c.rate_limit_signup_window_secs),
            mail_per_address: quota(c.rate_limit_mail_per_address, c.rate_limit_mail_window_secs),
            mail_per_ip: quota(c.rate_limit_mail_per_ip, c.rate_limit_mail_window_secs),
            refresh_per_session: quota(c.rate_limit_refresh_per_session, c.rate_limit_refresh_window_secs),
        }
    }

    fn quota(&self, rule: Rule) -> Quota {
        match rule {
            Rule::LoginFailuresPerAccount => self.login_per_account,
            Rule::LoginPerIp => self.login_per_ip,
            Rule::SignupPerIp => self.signup_per_ip,
            Rule::SignupPerAddress => self.signup_per_address,
            Rule::MailPerAddress => self.mail_per_address,
            Rule::MailPerIp => self.mail_per_ip,
        }
    }
}

/// The rules, and the key their subjects are hashed with.
pub struct Limiter {
    settings: LimitSettings,
    subject_key: hmac::Key,
}

fn window(secs: u64) -> chrono::Duration {
    chrono::Duration::seconds(secs as i64)
}

fn limited(quota: Quota, started: DateTime<Utc>, now: DateTime<Utc>) -> Limited {
    let left = (started + window(quota.window_secs) - now).num_milliseconds().max(0) as u64;
    Limited { limit: quota.limit, retry_after: Duration::from_secs(left.div_ceil(1000).max(1)) }
}

impl Limiter {
    /// `subject_key` keys the HMAC that subjects are stored under.
    pub fn new(settings: LimitSettings, subject_key: hmac::Key) -> Self {
        Self { settings, subject_key }
    }

    fn key(&self, rule: Rule, subject: &str) -> String {
        let tag = hmac::sign(&self.subject_key, subject.as_bytes());
        let hex: String = tag.as_ref()[..20].iter().map(|b| format!("{b:02x}")).collect();
        format!("{}:{hex}", rule.name())
    }

    /// Counts one attempt of `subject` under `rule`, in the statement that
    /// reads the count; `Fault::RateLimited` when this attempt is over the
    /// limit (and must not be served).
    pub async fn hit(
        &self,
        db: &impl ConnectionTrait,
        rule: Rule,
        subject: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Fault> {
        if !self.settings.enabled {
            return Ok(());
        }
        let quota = self.settings.quota(rule);
        let w = rate_limits::hit(db, &self.key(rule, subject), now, window(quota.window_secs)).await?;
        if w.count > quota.limit {
            crate::observe::metrics::rate_limited(rule.name());
            return Err(Fault::RateLimited(limited(quota, w.started, now)));
        }
        Ok(())
    }

    /// Forgets `subject`'s count under `rule`.
    pub async fn clear(&self, db: &impl ConnectionTrait, rule: Rule, subject: &str) -> Result<(), DbErr> {
        if self.settings.enabled {
            rate_limits::clear(db, &self.key(rule, subject)).await?;
        }
        Ok(())
    }

    /// Counts one refresh against the session of the presented token.
    pub async fn hit_refresh(
        &self,
        db: &impl ConnectionTrait,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), Fault> {
        if !self.settings.enabled {
            return Ok(());
        }
        let quota = self.settings.refresh_per_session;
        match rate_limits::hit_refresh(db, token_hash, now, window(quota.window_secs)).await? {
            Some((_, w)) if w.count > quota.limit => {
                crate::observe::metrics::rate_limited("refresh-session");
                Err(Fault::RateLimited(limited(quota, w.started, now)))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_keyed_not_plainly_hashed() {
        let settings = LimitSettings::from_config(&config::Limits::default());
        let a = Limiter::new(settings.clone(), hmac::Key::new(hmac::HMAC_SHA256, b"one"));
        let b = Limiter::new(settings, hmac::Key::new(hmac::HMAC_SHA256, b"two"));
        let key = a.key(Rule::LoginPerIp, "127.0.0.1");
        assert!(key.starts_with("login-ip:") && key.len() == "login-ip:".len() + 40, "{key}");
        assert_ne!(key, b.key(Rule::LoginPerIp, "127.0.0.1"), "another server secret, another key");
        assert_ne!(key, a.key(Rule::MailPerIp, "127.0.0.1"));
        // Not the plain SHA-256 an outsider could compute.
        let plain = ring::digest::digest(&ring::digest::SHA256, b"127.0.0.1");
        let plain: String = plain.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert!(!key.contains(&plain[..40]));
    }

    #[test]
    fn retry_after_is_the_rest_of_the_window_and_at_least_a_second() {
        let quota = Quota { limit: 5, window_secs: 900 };
        let now = Utc::now();
        assert_eq!(limited(quota, now - window(100), now).retry_after, Duration::from_secs(800));
        assert_eq!(limited(quota, now - window(900), now).retry_after, Duration::from_secs(1));
    }
}
