//! The key ring on disk: `ring.json` (kid, algorithm, state of every key),
//! one PKCS#8 PEM file per private key, and the refresh-token secret.
//! Private files are created mode 0600.

use std::{
    fs, io,
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use super::jwks::{Jwk, PublicParts};
use super::provider::ParsedKey;
use crate::config::SigningAlg;

pub const RING_FILE: &str = "ring.json";
pub const REFRESH_SECRET_FILE: &str = "refresh-secret.key";
/// Seals second-factor secrets (README "Second factors"): kept here, never in the database.
pub const MFA_KEY_FILE: &str = "mfa.key";

/// Where a key is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published in the JWKS, not yet signing: verifiers learn it before it is used.
    Next,
    /// Signs every new token; exactly one.
    Active,
    /// Published until every token it signed has expired, then prunable.
    Retired,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyEntry {
    pub kid: String,
    pub alg: SigningAlg,
    pub state: KeyState,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RingFile {
    pub keys: Vec<KeyEntry>,
}

/// The keys directory.
#[derive(Clone, Debug)]
pub struct KeyDir {
    path: PathBuf,
}

impl KeyDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn ring_path(&self) -> PathBuf {
        self.path.join(RING_FILE)
    }

    fn private_path(&self, kid: &str) -> PathBuf {
        self.path.join(format!("{kid}.pem"))
    }

    /// The ring file as raw bytes, or `None` when the directory holds no ring.
    pub fn read_ring_bytes(&self) -> anyhow::Result<Option<Vec<u8>>> {
        match fs::read(self.ring_path()) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.ring_path().display())),
        }
    }

    pub fn read_ring(&self) -> anyhow::Result<Option<RingFile>> {
        let Some(bytes) = self.read_ring_bytes()? else {
            return Ok(None);
        };
        let ring = serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", self.ring_path().display()))?;
        Ok(Some(ring))
    }

    /// Replaces `ring.json` atomically, so a running server never reads half a file.
    fn write_ring(&self, ring: &RingFile) -> anyhow::Result<()> {
        let tmp = self.path.join(format!(".{RING_FILE}.tmp"));
        fs::write(&tmp, serde_json::to_vec_pretty(ring)?)?;
        fs::rename(&tmp, self.ring_path())?;
        Ok(())
    }

    /// The PKCS#8 DER of a private key.
    pub fn read_private(&self, kid: &str) -> anyhow::Result<Vec<u8>> {
        let path = self.private_path(kid);
        let text = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let pem = pem::parse(text).with_context(|| format!("parsing {}", path.display()))?;
        Ok(pem.into_contents())
    }

    fn write_private(&self, kid: &str, der: &[u8]) -> anyhow::Result<()> {
        let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der));
        write_secret_file(&self.private_path(kid), pem.as_bytes())
    }

    /// Creates a ring (an active and a next key) when the directory holds none.
    /// Returns whether it generated one.
    pub fn ensure(&self, alg: SigningAlg, now: DateTime<Utc>) -> anyhow::Result<bool> {
        fs::create_dir_all(&self.path).with_context(|| format!("creating {}", self.path.display()))?;
        if self.read_ring_bytes()?.is_some() {
            return Ok(false);
        }
        let active = self.generate(alg, KeyState::Active, now)?;
        let next = self.generate(alg, KeyState::Next, now)?;
        self.write_ring(&RingFile { keys: vec![active, next] })?;
        Ok(true)
    }

    /// next → active, active → retired, and a new next key.
    pub fn rotate(&self, alg: SigningAlg, now: DateTime<Utc>) -> anyhow::Result<RingFile> {
        let Some(mut ring) = self.read_ring()? else {
            bail!("no key ring in {}; run `latchkey keys generate` first", self.path.display())
        };
        let has_next = ring.keys.iter().any(|k| k.state == KeyState::Next);
        if !has_next {
            ring.keys.push(self.generate(alg, KeyState::Next, now)?);
        }
        for key in &mut ring.keys {
            match key.state {
                KeyState::Active => {
                    key.state = KeyState::Retired;
                    key.retired_at = Some(now);
                }
                KeyState::Next => key.state = KeyState::Active,
                KeyState::Retired => {}
            }
        }
        ring.keys.push(self.generate(alg, KeyState::Next, now)?);
        self.write_ring(&ring)?;
        Ok(ring)
    }

    /// Removes keys retired more than `older_than` before `now`; returns their kids.
    pub fn prune(&self, older_than: chrono::Duration, now: DateTime<Utc>) -> anyhow::Result<Vec<String>> {
        let Some(mut ring) = self.read_ring()? else {
            return Ok(Vec::new());
        };
        let cutoff = now - older_than;
        let (gone, kept): (Vec<_>, Vec<_>) = ring
            .keys
            .into_iter()
            .partition(|k| k.state == KeyState::Retired && k.retired_at.is_some_and(|at| at <= cutoff));
        ring.keys = kept;
        self.write_ring(&ring)?;
        for key in &gone {
            let _ = fs::remove_file(self.private_path(&key.kid));
        }
        Ok(gone.into_iter().map(|k| k.kid).collect())
    }

    fn generate(&self, alg: SigningAlg, state: KeyState, now: DateTime<Utc>) -> anyhow::Result<KeyEntry> {
        let der = generate_pkcs8(alg)?;
        let jwk = public_jwk(alg, &der)?;
        self.write_private(&jwk.kid, &der)?;
        Ok(KeyEntry { kid: jwk.kid, alg, state, created_at: now, retired_at: None })
    }

    /// The server-side secret that derives refresh-token successors; created on first use.
    pub fn refresh_secret(&self) -> anyhow::Result<[u8; 32]> {
        self.secret(REFRESH_SECRET_FILE)
    }

    /// Whether the second-factor key file is there.
    pub fn has_mfa_key(&self) -> bool {
        self.path.join(MFA_KEY_FILE).exists()
    }

    /// The key that seals TOTP secrets and keys recovery-code hashes; created on first use.
    pub fn mfa_key(&self) -> anyhow::Result<[u8; 32]> {
        self.secret(MFA_KEY_FILE)
    }

    /// 32 random bytes in the file `name`, created (mode 0600) on first use.
    fn secret(&self, name: &str) -> anyhow::Result<[u8; 32]> {
        let path = self.path.join(name);
        if !path.exists() {
            let mut secret = [0u8; 32];
            SystemRandom::new().fill(&mut secret).map_err(|_| anyhow::anyhow!("no randomness"))?;
            match write_secret_file(&path, &secret) {
                Ok(()) => {}
                // Another instance created it first: use theirs.
                Err(e) if path.exists() => tracing::debug!(error = %e, file = name, "secret file raced"),
                Err(e) => return Err(e),
            }
        }
        let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        bytes.try_into().map_err(|_| anyhow::anyhow!("{} must hold 32 bytes", path.display()))
    }
}

fn write_secret_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}

/// A fresh private key as PKCS#8 DER.
fn generate_pkcs8(alg: SigningAlg) -> anyhow::Result<Vec<u8>> {
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
    let rng = SystemRandom::new();
    let no_rng = |_| anyhow::anyhow!("key generation failed");
    Ok(match alg {
        SigningAlg::ES256 => {
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).map_err(no_rng)?.as_ref().to_vec()
        }
        SigningAlg::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng).map_err(no_rng)?.as_ref().to_vec(),
        // ring cannot generate RSA keys; the rsa crate does, and ring signs.
        SigningAlg::RS256 => {
            use rsa::pkcs8::EncodePrivateKey;
            let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048)?;
            key.to_pkcs8_der()?.as_bytes().to_vec()
        }
    })
}

/// Parses a PKCS#8 private key for `alg`.
pub fn parse(alg: SigningAlg, der: &[u8]) -> anyhow::Result<ParsedKey> {
    ParsedKey::from_pkcs8(alg.jwt(), der).map_err(|e| anyhow::anyhow!("{alg} key rejected: {e}"))
}

fn public_jwk(alg: SigningAlg, der: &[u8]) -> anyhow::Result<Jwk> {
    jwk_of(alg, &parse(alg, der)?, der)
}

/// The public JWK of a parsed private key (`der` is its PKCS#8 form).
pub fn jwk_of(alg: SigningAlg, parsed: &ParsedKey, der: &[u8]) -> anyhow::Result<Jwk> {
    Ok(match alg {
        SigningAlg::ES256 => Jwk::from_public(alg, PublicParts::P256(parsed.public_key())),
        SigningAlg::EdDSA => Jwk::from_public(alg, PublicParts::Ed25519(parsed.public_key())),
        SigningAlg::RS256 => {
            use rsa::{pkcs8::DecodePrivateKey, traits::PublicKeyParts};
            let key = rsa::RsaPrivateKey::from_pkcs8_der(der)?;
            let (n, e) = (key.n().to_bytes_be(), key.e().to_bytes_be());
            Jwk::from_public(alg, PublicParts::Rsa { n: &n, e: &e })
        }
    })
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    #[test]
    fn a_retired_key_is_pruned_only_once_its_tokens_can_have_expired() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeyDir::new(dir.path());
        let t0 = Utc::now();
        keys.ensure(SigningAlg::ES256, t0).unwrap();
        let retired =
            keys.rotate(SigningAlg::ES256, t0).unwrap().keys.into_iter().find(|k| k.state == KeyState::Retired);
        let lifetime = Duration::seconds(960);
        assert!(keys.prune(lifetime, t0 + Duration::seconds(959)).unwrap().is_empty(), "too early");
        assert_eq!(keys.prune(lifetime, t0 + lifetime).unwrap(), [retired.unwrap().kid]);
        let states: Vec<_> = keys.read_ring().unwrap().unwrap().keys.into_iter().map(|k| k.state).collect();
        assert_eq!(states, [KeyState::Active, KeyState::Next]);
    }
}
