//! Status List Tokens (draft-ietf-oauth-status-list-20 §5.1): a JWT with
//! `typ` `statuslist+jwt`, signed by the active key of the ring, whose `sub`
//! is the list's own URI and whose `status_list` carries the bits, one per
//! slot, ZLIB-compressed and base64url-encoded without padding.

use std::io::Write;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use jsonwebtoken::{Header, encode};
use serde::{Deserialize, Serialize};

use super::keyring::KeyRing;

pub const STATUS_LIST_TYP: &str = "statuslist+jwt";
/// The media type a status list is served with.
pub const STATUS_LIST_MEDIA_TYPE: &str = "application/statuslist+jwt";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusListClaims {
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    /// Seconds a consumer may cache this token.
    pub ttl: u64,
    pub status_list: StatusList,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusList {
    pub bits: u8,
    pub lst: String,
}

/// The list's bytes with the bits of `invalid` set: slot `i` is bit `i % 8`
/// (least significant first) of byte `i / 8`; `size` slots in all.
pub fn pack(size: u32, invalid: &[u32]) -> Vec<u8> {
    let mut bytes = vec![0u8; size.div_ceil(8) as usize];
    for &idx in invalid.iter().filter(|&&i| i < size) {
        bytes[(idx / 8) as usize] |= 1 << (idx % 8);
    }
    bytes
}

/// `lst`: the bytes ZLIB-compressed (best compression), then base64url without padding.
pub fn encode_list(bytes: &[u8]) -> String {
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    zlib.write_all(bytes).expect("compressing into memory does not fail");
    B64.encode(zlib.finish().expect("compressing into memory does not fail"))
}

/// Signs the status list token for `claims` with the ring's active key.
pub fn sign(ring: &KeyRing, claims: &StatusListClaims) -> anyhow::Result<(String, String)> {
    let key = ring.active();
    let mut header = Header::new(key.alg);
    header.typ = Some(STATUS_LIST_TYP.into());
    header.kid = Some(key.kid.clone());
    Ok((encode(&header, claims, &key.encoding)?, key.kid.clone()))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn bits_are_least_significant_first_and_match_the_drafts_test_vector() {
        // draft-20, the 1-bit test vector: bytes [0xB9, 0xA3].
        let set = [0, 3, 4, 5, 7, 8, 9, 13, 15];
        assert_eq!(pack(16, &set), [0xB9, 0xA3]);
        let lst = encode_list(&[0xB9, 0xA3]);
        assert_eq!(lst, "eNrbuRgAAhcBXQ", "the draft's own encoding");
        let mut inflated = Vec::new();
        flate2::read::ZlibDecoder::new(&B64.decode(&lst).unwrap()[..]).read_to_end(&mut inflated).unwrap();
        assert_eq!(inflated, [0xB9, 0xA3]);
        assert!(!lst.contains('='), "no padding");
        assert_eq!(pack(64, &[]).len(), 8, "allocated at full size");
    }
}
