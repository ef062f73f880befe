//! TOTP (RFC 6238) through `totp-rs`: SHA-1, 6 digits, 30-second steps, one
//! step of clock drift either way, the parameters every authenticator app
//! reads from an `otpauth://` URI.

use base64::Engine;
use totp_rs::{Algorithm, Builder};

/// Secret length: 160 bits, RFC 4226's recommendation.
pub const SECRET_BYTES: usize = 20;
const DIGITS: u8 = 6;
const STEP_SECS: u64 = 30;

/// A TOTP secret (the raw bytes). `Debug` never prints it.
#[derive(Clone)]
pub struct TotpSecret(Vec<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(<hidden>)")
    }
}

impl TotpSecret {
    pub fn generate() -> Self {
        Self(crate::token::opaque::random()[..SECRET_BYTES].to_vec())
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// RFC 4648 base32 without padding, as authenticator apps take it.
    pub fn base32(&self) -> String {
        totp_rs::Secret::from(self.0.as_slice()).to_base32()
    }

    /// The time step `code` is valid for at `unix_secs` (± one step), if any.
    /// Anything but six ASCII digits is no code at all.
    pub fn check(&self, code: &str, unix_secs: u64) -> Option<u64> {
        if code.len() != usize::from(DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let totp = Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS)
            .with_skew(1)
            .with_step_duration(STEP_SECS)
            .with_secret(self.0.clone())
            .build()
            .ok()?;
        totp.check(code, unix_secs)
    }
}

/// The Key URI (`otpauth://totp/…`) an authenticator app scans, with every
/// parameter spelled out so no app has to guess a default.
pub fn uri(issuer: &str, account: &str, secret: &TotpSecret) -> String {
    let label = format!("{}:{}", escape(issuer), escape(account));
    format!(
        "otpauth://totp/{label}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        secret.base32(),
        escape(issuer)
    )
}

/// Percent-encodes everything but unreserved characters (RFC 3986), so a
/// `:` or `&` in a name cannot break the label or the query.
fn escape(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>().replace('+', "%20")
}

/// The URI as a QR code, an SVG document as a `data:` URL for an `<img>`.
pub fn qr_svg_data_url(uri: &str) -> anyhow::Result<String> {
    let code = qrcode::QrCode::new(uri.as_bytes())?;
    let svg = code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).quiet_zone(true).build();
    Ok(format!("data:image/svg+xml;base64,{}", base64::engine::general_purpose::STANDARD.encode(svg)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 (the 8-digit vectors, truncated to the 6 low digits).
    #[test]
    fn matches_the_rfc_vectors_with_one_step_of_drift() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        for (time, code) in [(59, "287082"), (1_111_111_109, "081804"), (1_234_567_890, "005924")] {
            assert_eq!(secret.check(code, time), Some(time / 30), "{time}");
            assert_eq!(secret.check(code, time + 30), Some(time / 30), "one step late");
            assert_eq!(secret.check(code, time + 61), None, "two steps late");
        }
        for bad in ["28708", "2870822", "28708a", "２８７０８２", " 287082"] {
            assert_eq!(secret.check(bad, 59), None, "{bad:?}");
        }
    }

    #[test]
    fn the_uri_spells_out_every_parameter_and_escapes_names() {
        let secret = TotpSecret::from_bytes(vec![0; 20]);
        assert_eq!(
            uri("Acme: Auth", "a&b@example.com", &secret),
            "otpauth://totp/Acme%3A%20Auth:a%26b%40example.com?secret=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\
             &issuer=Acme%3A%20Auth&algorithm=SHA1&digits=6&period=30"
        );
    }
}
