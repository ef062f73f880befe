//! The key ring in memory: parsed once, swapped atomically when `ring.json`
//! changes, with the JWKS body and its ETag serialised once per version.

use std::{sync::Arc, time::Duration};

use anyhow::{Context, bail};
use arc_swap::ArcSwap;
use bytes::Bytes;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

use super::{
    jwks::{Jwk, JwkSet},
    keyfile::{self, KeyDir, KeyState},
    provider,
};

/// One usable key.
pub struct LoadedKey {
    pub kid: String,
    pub alg: Algorithm,
    pub state: KeyState,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
}

/// Every key of the ring, ready to sign and verify.
pub struct KeyRing {
    keys: Vec<LoadedKey>,
    active: usize,
    jwks: Bytes,
    etag: String,
    /// Digest of the `ring.json` this was loaded from, to notice changes.
    source_digest: Vec<u8>,
}

pub type KeyRingHandle = Arc<ArcSwap<KeyRing>>;

impl KeyRing {
    pub fn load(dir: &KeyDir) -> anyhow::Result<Self> {
        let Some(bytes) = dir.read_ring_bytes()? else { bail!("no key ring in {}", dir.path().display()) };
        let ring: keyfile::RingFile =
            serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", dir.ring_path().display()))?;
        let mut keys = Vec::with_capacity(ring.keys.len());
        let mut jwks = Vec::with_capacity(ring.keys.len());
        for entry in &ring.keys {
            let der = dir.read_private(&entry.kid)?;
            let parsed = keyfile::parse(entry.alg, &der)?;
            let jwk: Jwk = keyfile::jwk_of(entry.alg, &parsed, &der)?;
            if jwk.kid != entry.kid {
                bail!("key {} does not match its thumbprint {}", entry.kid, jwk.kid);
            }
            provider::remember(&der, Arc::new(parsed));
            let alg = entry.alg.jwt();
            let encoding = match alg {
                Algorithm::ES256 => EncodingKey::from_ec_der(&der),
                Algorithm::EdDSA => EncodingKey::from_ed_der(&der),
                _ => EncodingKey::from_rsa_der(&der),
            };
            let decoding = DecodingKey::from_jwk(&to_jsonwebtoken_jwk(&jwk)?)?;
            keys.push(LoadedKey { kid: entry.kid.clone(), alg, state: entry.state, encoding, decoding });
            jwks.push(jwk);
        }
        let actives: Vec<usize> =
            keys.iter().enumerate().filter(|(_, k)| k.state == KeyState::Active).map(|(i, _)| i).collect();
        let [active] = actives[..] else {
            bail!("the key ring must hold exactly one active key, found {}", actives.len())
        };
        let body = serde_json::to_vec(&JwkSet { keys: jwks })?;
        let digest = ring::digest::digest(&ring::digest::SHA256, &body);
        let etag = format!("\"{}\"", hex(&digest.as_ref()[..12]));
        let source_digest = ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref().to_vec();
        Ok(Self { keys, active, jwks: Bytes::from(body), etag, source_digest })
    }

    /// The key that signs new tokens.
    pub fn active(&self) -> &LoadedKey {
        &self.keys[self.active]
    }

    /// Looks a key up by `kid`; the token header is trusted for nothing else.
    pub fn find(&self, kid: &str) -> Option<&LoadedKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    pub fn keys(&self) -> &[LoadedKey] {
        &self.keys
    }

    /// The serialised JWKS and its (quoted) ETag.
    pub fn jwks(&self) -> (&Bytes, &str) {
        (&self.jwks, &self.etag)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn to_jsonwebtoken_jwk(jwk: &Jwk) -> anyhow::Result<jsonwebtoken::jwk::Jwk> {
    Ok(serde_json::from_value(serde_json::to_value(jwk)?)?)
}

/// Polls `ring.json` and swaps in a new ring when it changes. A ring that
/// fails to load is logged and the previous one kept.
pub fn spawn_reloader(handle: KeyRingHandle, dir: KeyDir, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let dir = dir.clone();
            let current = handle.load().source_digest.clone();
            let reloaded = tokio::task::spawn_blocking(move || -> anyhow::Result<Option<KeyRing>> {
                let Some(bytes) = dir.read_ring_bytes()? else {
                    return Ok(None);
                };
                if ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref() == current.as_slice() {
                    return Ok(None);
                }
                KeyRing::load(&dir).map(Some)
            })
            .await;
            match reloaded {
                Ok(Ok(Some(ring))) => {
                    tracing::info!(active_kid = %ring.active().kid, keys = ring.keys.len(), "key ring reloaded");
                    crate::observe::metrics::key_ring_reloaded();
                    handle.store(Arc::new(ring));
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = format!("{e:#}"), "key ring reload failed; keeping the previous ring")
                }
                Err(e) => tracing::error!(error = %e, "key ring reload task failed"),
            }
        }
    })
}
