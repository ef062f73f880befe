//! Tokens carried by links in mail: `lk_ev_…` verifies an email address,
//! `lk_pr_…` resets a password. 256 random bits each, stored only hashed,
//! single use; the prefix keeps one kind from being accepted as the other.

use std::fmt;

use super::opaque;

/// What a mailed token lets its holder do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    VerifyEmail,
    ResetPassword,
}

impl Purpose {
    /// As stored in `email_tokens.purpose`.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify_email",
            Purpose::ResetPassword => "reset_password",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "lk_ev_",
            Purpose::ResetPassword => "lk_pr_",
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct LinkToken {
    purpose: Purpose,
    bytes: [u8; 32],
}

impl LinkToken {
    pub fn generate(purpose: Purpose) -> Self {
        Self { purpose, bytes: opaque::random() }
    }

    /// `None` unless `value` is a token of `purpose`.
    pub fn parse(purpose: Purpose, value: &str) -> Option<Self> {
        opaque::decode(purpose.prefix(), value.trim()).map(|bytes| Self { purpose, bytes })
    }

    pub fn purpose(&self) -> Purpose {
        self.purpose
    }

    /// The value put in the link.
    pub fn expose(&self) -> String {
        opaque::encode(self.purpose.prefix(), &self.bytes)
    }

    pub fn hash(&self) -> Vec<u8> {
        opaque::hash(&self.bytes)
    }
}

impl fmt::Debug for LinkToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LinkToken({:?}, <hidden>)", self.purpose)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_of_one_purpose_is_not_one_of_the_other() {
        let token = LinkToken::generate(Purpose::VerifyEmail);
        let text = token.expose();
        assert!(text.starts_with("lk_ev_"));
        assert_eq!(LinkToken::parse(Purpose::VerifyEmail, &text), Some(token));
        assert_eq!(LinkToken::parse(Purpose::ResetPassword, &text), None);
    }
}
