//! Types for credentials, whose `Debug` never prints the value, and the
//! keys and files that hold secrets.

use std::fmt;

/// A password as the user sent it. Never logged, never echoed.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<hidden>)")
    }
}

/// A configuration secret (a URL with a password in it, a client secret).
/// `Debug` and `Display` print `<redacted>`; only `expose` gives the value,
/// so a `{:?}` of the configuration, or a log line, cannot leak it.
#[derive(Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Takes group and other permissions away from an existing file that holds
/// data (a SQLite database written before latchkey created files 0600, say).
pub fn make_private(path: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
            tracing::warn!(path = %path.display(), "made private (it was readable by other users)");
        }
    }
    Ok(())
}

/// A key for one purpose, derived from a root secret: `HMAC(root, label)`.
/// Each use (CSRF tokens, rate-limit subjects, sign-in values) gets its own,
/// so no value made for one purpose is valid for another.
pub fn derive_key(root: &ring::hmac::Key, label: &str) -> ring::hmac::Key {
    let derived = ring::hmac::sign(root, label.as_bytes());
    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print_their_value() {
        let secret = Secret::new("smtp://user:hunter2@mail.example");
        assert!(!format!("{secret:?} {secret}").contains("hunter2"));
        assert_eq!(secret.expose(), "smtp://user:hunter2@mail.example");
        assert!(!format!("{:?}", Password::new("hunter2")).contains("hunter2"));
    }
}
