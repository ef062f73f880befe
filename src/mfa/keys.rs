//! The keys of second factors, from `mfa.key` in the key ring directory
//! (never the database, so a copy of the database alone opens nothing):
//! one seals TOTP secrets (AES-256-GCM, bound to the account), another
//! keys the hashes of recovery codes.

use ring::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    hmac,
    rand::{SecureRandom, SystemRandom},
};
use uuid::Uuid;

pub struct MfaKeys {
    seal: LessSafeKey,
    recovery: hmac::Key,
}

impl MfaKeys {
    pub fn new(root: &[u8; 32]) -> Self {
        let root = hmac::Key::new(hmac::HMAC_SHA256, root);
        let seal_bytes = hmac::sign(&root, b"latchkey totp sealing v1");
        let seal = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, seal_bytes.as_ref()).expect("32-byte key"));
        Self { seal, recovery: crate::secret::derive_key(&root, "latchkey recovery codes v1") }
    }

    /// Encrypts `secret` for `user_id`: a fresh nonce, then the ciphertext
    /// and tag. The account id is the associated data, so a sealed secret
    /// moved to another account's row does not open.
    pub fn seal(&self, user_id: Uuid, secret: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).expect("system randomness is available");
        let mut sealed = secret.to_vec();
        self.seal
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(user_id.as_bytes()), &mut sealed)
            .expect("a TOTP secret is far below the AES-GCM size limit");
        [nonce.as_slice(), &sealed].concat()
    }

    /// The secret sealed for `user_id`, or `None` if it was not (another
    /// key, another account, or altered).
    pub fn open(&self, user_id: Uuid, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let plain = self.seal.open_in_place(nonce, Aad::from(user_id.as_bytes()), &mut body).ok()?;
        Some(plain.to_vec())
    }

    /// What the database stores for a (normalised) recovery code.
    pub fn recovery_hash(&self, code: &str) -> Vec<u8> {
        hmac::sign(&self.recovery, code.as_bytes()).as_ref().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_for_its_account_and_key() {
        let keys = MfaKeys::new(&[7; 32]);
        let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
        let sealed = keys.seal(alice, b"twenty bytes secret!");
        assert_ne!(&sealed[NONCE_LEN..NONCE_LEN + 20], b"twenty bytes secret!");
        assert_eq!(keys.open(alice, &sealed).as_deref(), Some(&b"twenty bytes secret!"[..]));
        assert_eq!(keys.open(bob, &sealed), None, "another account");
        assert_eq!(MfaKeys::new(&[8; 32]).open(alice, &sealed), None, "another key");
        let mut altered = sealed.clone();
        altered[NONCE_LEN] ^= 1;
        assert_eq!(keys.open(alice, &altered), None, "altered");
        assert_eq!(keys.open(alice, &sealed[..5]), None, "truncated");
        assert_ne!(keys.seal(alice, b"x"), keys.seal(alice, b"x"), "a fresh nonce each time");
    }
}
