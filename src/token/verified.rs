//! A small cache of access tokens already verified by this process. A token
//! never changes, so its signature need only be checked once; the checks that
//! depend on time (`exp`, `nbf`) and on the key still being in the ring are
//! repeated on every hit. SPAs send the same token for up to 15 minutes, so
//! most requests skip the ECDSA verification (~90 µs) entirely.

use std::sync::Arc;

use quick_cache::sync::Cache;

use super::{
    AccessClaims, AccessTokenError, KeyRing,
    access::{self, TokenSettings},
};

pub struct VerifiedTokens {
    cache: Cache<[u8; 32], Arc<Verified>>,
}

struct Verified {
    kid: String,
    claims: AccessClaims,
}

impl VerifiedTokens {
    /// Room for `capacity` tokens (about 300 bytes each).
    pub fn new(capacity: usize) -> Self {
        Self { cache: Cache::new(capacity.max(1)) }
    }

    /// Verifies `token`, or finds it verified before and re-checks its lifetime and key.
    pub fn verify(
        &self,
        ring: &KeyRing,
        settings: &TokenSettings,
        token: &str,
        now: i64,
    ) -> Result<AccessClaims, AccessTokenError> {
        let mut id = [0u8; 32];
        id.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref());
        if let Some(hit) = self.cache.get(&id) {
            if ring.find(&hit.kid).is_none() {
                return Err(AccessTokenError::UnknownKey);
            }
            if !settings.current(&hit.claims, now) {
                return Err(AccessTokenError::Expired);
            }
            return Ok(hit.claims.clone());
        }
        let (kid, claims) = access::verify(ring, settings, token, now)?;
        self.cache.insert(id, Arc::new(Verified { kid, claims: claims.clone() }));
        Ok(claims)
    }
}
