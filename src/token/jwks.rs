//! JSON Web Keys: the public half of each signing key, and its RFC 7638 thumbprint.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use poem_openapi::Object;
use serde::Serialize;

use crate::config::SigningAlg;

/// A public signing key (RFC 7517).
#[derive(Debug, Clone, Object, Serialize)]
pub struct Jwk {
    /// Key type: `EC`, `OKP` or `RSA`.
    pub kty: String,
    /// Always `sig`.
    #[oai(rename = "use")]
    #[serde(rename = "use")]
    pub use_: String,
    /// The one algorithm this key signs with: `ES256`, `EdDSA` or `RS256`.
    pub alg: String,
    /// Key id: the RFC 7638 SHA-256 thumbprint.
    pub kid: String,
    /// Curve, for `EC` (`P-256`) and `OKP` (`Ed25519`) keys.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// Public x coordinate (EC) or public key (OKP), base64url.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// Public y coordinate (EC), base64url.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// RSA modulus, base64url.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent, base64url.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}

/// The published key set.
#[derive(Debug, Clone, Object, Serialize)]
pub struct JwkSet {
    /// Every key that signs or may have signed a live token: next, active and retired.
    pub keys: Vec<Jwk>,
}

/// The raw public material of a key.
pub enum PublicParts<'a> {
    /// Uncompressed SEC1 point (0x04 ‖ x ‖ y).
    P256(&'a [u8]),
    Ed25519(&'a [u8]),
    Rsa {
        n: &'a [u8],
        e: &'a [u8],
    },
}

impl Jwk {
    /// Builds the JWK of a public key; `kid` is its thumbprint.
    pub fn from_public(alg: SigningAlg, parts: PublicParts<'_>) -> Self {
        let mut jwk = Jwk {
            kty: String::new(),
            use_: "sig".into(),
            alg: alg.as_str().into(),
            kid: String::new(),
            crv: None,
            x: None,
            y: None,
            n: None,
            e: None,
        };
        match parts {
            PublicParts::P256(point) => {
                jwk.kty = "EC".into();
                jwk.crv = Some("P-256".into());
                jwk.x = Some(B64.encode(&point[1..33]));
                jwk.y = Some(B64.encode(&point[33..65]));
            }
            PublicParts::Ed25519(raw) => {
                jwk.kty = "OKP".into();
                jwk.crv = Some("Ed25519".into());
                jwk.x = Some(B64.encode(raw));
            }
            PublicParts::Rsa { n, e } => {
                jwk.kty = "RSA".into();
                jwk.n = Some(B64.encode(n));
                jwk.e = Some(B64.encode(e));
            }
        }
        jwk.kid = jwk.thumbprint();
        jwk
    }

    /// RFC 7638: SHA-256 over the required members in lexicographic order.
    /// The values are base64url, so no JSON escaping is ever needed.
    pub fn thumbprint(&self) -> String {
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        let canonical = match self.kty.as_str() {
            "EC" => format!(r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#, s(&self.crv), s(&self.x), s(&self.y)),
            "OKP" => format!(r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#, s(&self.crv), s(&self.x)),
            _ => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, s(&self.e), s(&self.n)),
        };
        B64.encode(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        // The RSA key of RFC 7638 §3.1 and the thumbprint given there.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let jwk = Jwk {
            kty: "RSA".into(),
            use_: "sig".into(),
            alg: "RS256".into(),
            kid: String::new(),
            crv: None,
            x: None,
            y: None,
            n: Some(n.into()),
            e: Some("AQAB".into()),
        };
        assert_eq!(jwk.thumbprint(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }
}
