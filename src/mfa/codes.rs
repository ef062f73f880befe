//! Recovery codes and the `lk_mfa_` token of a login's second step.

use std::fmt;

use crate::token::opaque;

/// How many recovery codes a set has.
pub const RECOVERY_CODES: usize = 10;
/// Characters per code: 12 of 32 symbols, 60 bits.
const CODE_LEN: usize = 12;
/// Crockford's base32 alphabet, lower case: no i, l, o or u to misread.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A fresh set, formatted for people: `xxxx-xxxx-xxxx`.
pub fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let random = opaque::random();
            let symbols: String = random[..CODE_LEN].iter().map(|b| ALPHABET[usize::from(b & 31)] as char).collect();
            format!("{}-{}-{}", &symbols[..4], &symbols[4..8], &symbols[8..])
        })
        .collect()
}

/// The code as stored (hashed): lower case, without the dashes or spaces a
/// person may type; `None` if it cannot be a code.
pub fn normalise_recovery_code(input: &str) -> Option<String> {
    let code: String = input.chars().filter(|c| !matches!(c, '-' | ' ')).map(|c| c.to_ascii_lowercase()).collect();
    (code.len() == CODE_LEN && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

pub const MFA_TOKEN_PREFIX: &str = "lk_mfa_";

/// The token that carries a login from a correct first factor to its second.
pub struct MfaToken([u8; 32]);

impl MfaToken {
    pub fn generate() -> Self {
        Self(opaque::random())
    }

    pub fn parse(value: &str) -> Option<Self> {
        opaque::decode(MFA_TOKEN_PREFIX, value).map(Self)
    }

    pub fn expose(&self) -> String {
        opaque::encode(MFA_TOKEN_PREFIX, &self.0)
    }

    pub fn hash(&self) -> Vec<u8> {
        opaque::hash(&self.0)
    }
}

impl fmt::Debug for MfaToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MfaToken(<hidden>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_read_back_however_typed() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        assert_eq!(codes.iter().collect::<std::collections::HashSet<_>>().len(), 10);
        let code = &codes[0];
        assert_eq!(code.len(), 14);
        let plain = normalise_recovery_code(code).unwrap();
        assert_eq!(normalise_recovery_code(&code.to_uppercase()).as_ref(), Some(&plain));
        assert_eq!(normalise_recovery_code(&format!(" {} ", plain)).as_ref(), Some(&plain));
        for bad in
            ["", "abcd-efgh-jkm", "abcd-efgh-jkmnp", "abcd-efgh-jkmo", "abcd-efgh-jkm\u{0}", "ａｂｃｄ-efgh-jkmn"]
        {
            assert_eq!(normalise_recovery_code(bad), None, "{bad:?}");
        }
    }
}
