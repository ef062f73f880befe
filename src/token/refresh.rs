//! Refresh-token values: `lk_rt_` + 256 random bits in base64url. Only their
//! SHA-256 is stored. A successor is derived from the token it replaces
//! (HMAC under a server secret), so a retry re-derives the very same successor
//! without the database ever holding a usable token.

use std::fmt;

use ring::hmac;

use super::opaque;

pub const PREFIX: &str = "lk_rt_";

#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken([u8; 32]);

impl RefreshToken {
    pub fn generate() -> Self {
        Self(opaque::random())
    }

    /// Parses a presented token; anything not of our shape is `None`.
    pub fn parse(value: &str) -> Option<Self> {
        opaque::decode(PREFIX, value).map(Self)
    }

    /// The value handed to the client.
    pub fn expose(&self) -> String {
        opaque::encode(PREFIX, &self.0)
    }

    /// What the database stores.
    pub fn hash(&self) -> Vec<u8> {
        opaque::hash(&self.0)
    }

    /// The token that replaces this one.
    pub fn successor(&self, secret: &hmac::Key) -> Self {
        let tag = hmac::sign(secret, &self.0);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(tag.as_ref());
        Self(bytes)
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken(<hidden>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_shapes() {
        let token = RefreshToken::generate();
        let text = token.expose();
        assert!(text.starts_with("lk_rt_"));
        assert_eq!(RefreshToken::parse(&text), Some(token));
        assert_eq!(RefreshToken::parse("lk_rt_short"), None);
        assert_eq!(RefreshToken::parse(&text.replace("lk_rt_", "xx_rt_")), None);
    }

    #[test]
    fn successor_is_deterministic_and_distinct() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"k");
        let token = RefreshToken::generate();
        assert_eq!(token.successor(&key), token.successor(&key));
        assert_ne!(token.successor(&key), token);
    }
}
