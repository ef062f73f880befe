//! A `jsonwebtoken` crypto provider backed by `ring`.
//!
//! jsonwebtoken hands a provider the key bytes on every call; parsing a PKCS#8
//! key is the expensive part of signing, so parsed key pairs are cached by a
//! digest of their bytes and each key is parsed once per process.

use std::{
    collections::HashMap,
    sync::{Arc, OnceLock, RwLock},
};

use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey,
    crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils},
    errors::{ErrorKind, Result as JwtResult},
    jwk::ThumbprintHash,
};
use ring::{
    digest,
    rand::SystemRandom,
    signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair},
};

/// The provider; `install()` makes it the process default.
pub static RING_PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: |_| Err(ErrorKind::InvalidRsaKey("unsupported".into()).into()),
        rsa_pub_components_from_public_key: |_| Err(ErrorKind::InvalidRsaKey("unsupported".into()).into()),
        ec_pub_components_from_private_key: |_, _| Err(ErrorKind::InvalidEcdsaKey.into()),
        ed_pub_components_from_private_key: |_, _| Err(ErrorKind::InvalidEddsaKey.into()),
        compute_digest,
    },
};

/// Installs the ring provider; harmless if a provider is already installed.
pub fn install() {
    let _ = RING_PROVIDER.install_default();
}

fn compute_digest(data: &[u8], hash: ThumbprintHash) -> JwtResult<Vec<u8>> {
    let alg = match hash {
        ThumbprintHash::SHA256 => &digest::SHA256,
        ThumbprintHash::SHA384 => &digest::SHA384,
        ThumbprintHash::SHA512 => &digest::SHA512,
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    Ok(digest::digest(alg, data).as_ref().to_vec())
}

/// A parsed private key.
pub enum ParsedKey {
    Es256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rs256(RsaKeyPair),
}

impl ParsedKey {
    /// Parses a PKCS#8 document for `alg`.
    pub fn from_pkcs8(alg: Algorithm, der: &[u8]) -> Result<Self, String> {
        let rejected = |e: ring::error::KeyRejected| e.to_string();
        Ok(match alg {
            Algorithm::ES256 => Self::Es256(
                EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, der, &SystemRandom::new())
                    .map_err(rejected)?,
            ),
            Algorithm::EdDSA => Self::Ed25519(Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(rejected)?),
            Algorithm::RS256 => Self::Rs256(RsaKeyPair::from_pkcs8(der).map_err(rejected)?),
            other => return Err(format!("{other:?} is not supported")),
        })
    }

    /// The raw public key: the uncompressed point for EC, 32 bytes for Ed25519,
    /// the DER `RSAPublicKey` for RSA.
    pub fn public_key(&self) -> &[u8] {
        match self {
            Self::Es256(k) => k.public_key().as_ref(),
            Self::Ed25519(k) => k.public_key().as_ref(),
            Self::Rs256(k) => k.public_key().as_ref(),
        }
    }

    fn algorithm(&self) -> Algorithm {
        match self {
            Self::Es256(_) => Algorithm::ES256,
            Self::Ed25519(_) => Algorithm::EdDSA,
            Self::Rs256(_) => Algorithm::RS256,
        }
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, ring::error::Unspecified> {
        let rng = SystemRandom::new();
        match self {
            Self::Es256(k) => Ok(k.sign(&rng, msg)?.as_ref().to_vec()),
            Self::Ed25519(k) => Ok(k.sign(msg).as_ref().to_vec()),
            Self::Rs256(k) => {
                let mut out = vec![0; k.public().modulus_len()];
                k.sign(&sig::RSA_PKCS1_SHA256, &rng, msg, &mut out)?;
                Ok(out)
            }
        }
    }
}

type Cache = RwLock<HashMap<[u8; 32], Arc<ParsedKey>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn cache_key(der: &[u8]) -> [u8; 32] {
    let mut key = [0u8; 32];
    key.copy_from_slice(digest::digest(&digest::SHA256, der).as_ref());
    key
}

/// Remembers an already parsed key so signing never parses it again.
pub fn remember(der: &[u8], parsed: Arc<ParsedKey>) {
    cache().write().expect("key cache poisoned").insert(cache_key(der), parsed);
}

fn parsed(alg: Algorithm, der: &[u8]) -> JwtResult<Arc<ParsedKey>> {
    let id = cache_key(der);
    if let Some(found) = cache().read().expect("key cache poisoned").get(&id) {
        return Ok(found.clone());
    }
    let key = Arc::new(ParsedKey::from_pkcs8(alg, der).map_err(|_| ErrorKind::InvalidKeyFormat)?);
    remember(der, key.clone());
    Ok(key)
}

struct Signer(Arc<ParsedKey>);

impl signature::Signer<Vec<u8>> for Signer {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        self.0.sign(msg).map_err(|_| signature::Error::new())
    }
}

impl JwtSigner for Signer {
    fn algorithm(&self) -> Algorithm {
        self.0.algorithm()
    }
}

fn new_signer(alg: &Algorithm, key: &EncodingKey) -> JwtResult<Box<dyn JwtSigner>> {
    let parsed = parsed(*alg, key.as_bytes())?;
    if parsed.algorithm() != *alg {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    Ok(Box::new(Signer(parsed)))
}

enum PublicKey {
    Raw(&'static dyn sig::VerificationAlgorithm, Vec<u8>),
    RsaComponents(Vec<u8>, Vec<u8>),
}

struct Verifier {
    alg: Algorithm,
    key: PublicKey,
}

impl signature::Verifier<Vec<u8>> for Verifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        let result = match &self.key {
            PublicKey::Raw(alg, bytes) => sig::UnparsedPublicKey::new(*alg, bytes).verify(msg, signature),
            PublicKey::RsaComponents(n, e) => {
                sig::RsaPublicKeyComponents { n, e }.verify(&sig::RSA_PKCS1_2048_8192_SHA256, msg, signature)
            }
        };
        result.map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for Verifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

fn new_verifier(alg: &Algorithm, key: &DecodingKey) -> JwtResult<Box<dyn JwtVerifier>> {
    use jsonwebtoken::DecodingKeyKind as Kind;
    let key = match (alg, key.kind()) {
        (Algorithm::ES256, Kind::SecretOrDer(point)) => PublicKey::Raw(&sig::ECDSA_P256_SHA256_FIXED, point.clone()),
        (Algorithm::EdDSA, Kind::SecretOrDer(raw)) => PublicKey::Raw(&sig::ED25519, raw.clone()),
        (Algorithm::RS256, Kind::SecretOrDer(der)) => PublicKey::Raw(&sig::RSA_PKCS1_2048_8192_SHA256, der.clone()),
        (Algorithm::RS256, Kind::RsaModulusExponent { n, e }) => PublicKey::RsaComponents(n.clone(), e.clone()),
        // HMAC and everything else: latchkey never accepts them.
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    Ok(Box::new(Verifier { alg: *alg, key }))
}
