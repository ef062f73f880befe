//! Tokens and keys: access-token claims, signing and verification, the key
//! ring on disk and in memory, JWKS, refresh-token and mailed-link values.

pub mod access;
pub mod jwks;
pub mod keyfile;
pub mod keyring;
pub mod link;
pub mod opaque;
pub mod provider;
pub mod refresh;
pub mod status;
pub mod verified;

pub use access::{AccessClaims, AccessTokenError};
pub use keyring::{KeyRing, KeyRingHandle};
pub use refresh::RefreshToken;
