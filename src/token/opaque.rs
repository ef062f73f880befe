//! Opaque bearer values: a short prefix naming what the value is, then 256
//! random bits in base64url. Only their SHA-256 is ever stored.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use ring::{
    digest,
    rand::{SecureRandom, SystemRandom},
};

/// 256 bits from the operating system's generator.
pub fn random() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).expect("system randomness is available");
    bytes
}

pub fn encode(prefix: &str, bytes: &[u8; 32]) -> String {
    format!("{prefix}{}", B64.encode(bytes))
}

/// The bytes of `value` if it is `prefix` followed by exactly 32 encoded bytes.
pub fn decode(prefix: &str, value: &str) -> Option<[u8; 32]> {
    let body = value.strip_prefix(prefix)?;
    if body.len() != 43 {
        return None;
    }
    B64.decode(body).ok()?.try_into().ok()
}

/// What the database stores in place of the value.
pub fn hash(bytes: &[u8; 32]) -> Vec<u8> {
    digest::digest(&digest::SHA256, bytes).as_ref().to_vec()
}

/// What the database stores in place of a value that has no fixed shape
/// (an OAuth `state` as the provider sends it back).
pub fn hash_text(value: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, value.as_bytes()).as_ref().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_shapes() {
        let bytes = random();
        let text = encode("lk_x_", &bytes);
        assert_eq!(decode("lk_x_", &text), Some(bytes));
        assert_eq!(decode("lk_y_", &text), None);
        assert_eq!(decode("lk_x_", "lk_x_short"), None);
        assert_eq!(decode("lk_x_", &format!("{text}A")), None);
    }
}
