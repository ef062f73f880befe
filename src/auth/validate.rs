//! Input rules for emails, passwords and names. Each broken rule is reported
//! by name so clients can show the right message.

/// One rule an input broke: the field, the rule's stable name, a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenRule {
    pub field: &'static str,
    pub rule: &'static str,
    pub message: &'static str,
}

/// A request with fields that broke rules; `code` names the problem
/// (`invalid_email`, `invalid_password`, `invalid_name`, `invalid_profile`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub code: &'static str,
    pub errors: Vec<BrokenRule>,
}

impl Invalid {
    pub fn email(e: BrokenRule) -> Self {
        Self { code: "invalid_email", errors: vec![e] }
    }

    pub fn password(errors: Vec<BrokenRule>) -> Self {
        Self { code: "invalid_password", errors }
    }

    pub fn name(e: BrokenRule) -> Self {
        Self { code: "invalid_name", errors: vec![e] }
    }

    pub fn profile(e: BrokenRule) -> Self {
        Self { code: "invalid_profile", errors: vec![e] }
    }
}

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 128;
pub const MAX_EMAIL_CHARS: usize = 254;
pub const MAX_NAME_CHARS: usize = 100;

/// An address as stored: `email` keeps the local part's case, `key` is the
/// fully lower-cased form that uniqueness, look-ups and rate limits use.
/// Both are ASCII: the local part must be, and the domain is in its IDNA
/// ASCII form (`xn--…` for an internationalised one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub email: String,
    pub key: String,
}

fn rule(field: &'static str, rule: &'static str, message: &'static str) -> BrokenRule {
    BrokenRule { field, rule, message }
}

/// Trims, normalises the domain and checks the address.
///
/// Only an ASCII local part is accepted: Unicode lower-casing and
/// compatibility folding would merge look-alikes (`\u{212a}ate`, with a
/// KELVIN SIGN, lower-cases to `kate`) that a mail server may deliver to
/// different mailboxes, so one person's address could reach another's
/// account. The domain goes through IDNA (UTS #46), which is how mail and
/// DNS name it anyway: `Example.COM` and `例え.jp` have one form each.
pub fn email(raw: &str) -> Result<Email, BrokenRule> {
    let trimmed = raw.trim();
    if trimmed.chars().count() > MAX_EMAIL_CHARS {
        return Err(rule("email", "too_long", "An email address has at most 254 characters."));
    }
    if trimmed.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(rule(
            "email",
            "invalid_characters",
            "An email address cannot contain spaces or control characters.",
        ));
    }
    let Some((local, domain)) = trimmed.rsplit_once('@') else {
        return Err(rule("email", "format", "This is not an email address."));
    };
    if !local.is_ascii() {
        return Err(rule(
            "email",
            "invalid_characters",
            "The part of an email address before @ must be ASCII (letters, digits and . _ % + - and the like).",
        ));
    }
    let Ok(domain) = idna::domain_to_ascii_strict(domain) else {
        return Err(rule("email", "format", "This is not an email address."));
    };
    let normalised = format!("{local}@{domain}");
    let valid = email_address::EmailAddress::parse_with_options(
        &normalised,
        email_address::Options::default().without_display_text().without_domain_literal(),
    )
    .is_ok()
        && domain.contains('.');
    if !valid {
        return Err(rule("email", "format", "This is not an email address."));
    }
    Ok(Email { key: normalised.to_ascii_lowercase(), email: normalised })
}

/// The lowest zxcvbn score accepted (0–4; 3 is "safely unguessable: moderate
/// protection from offline slow-hash scenarios").
pub const MIN_PASSWORD_SCORE: u8 = 3;

/// The password rules; every rule broken is listed. `context` holds what an
/// attacker would try first for this account (the address, the name).
pub fn password(raw: &str, context: &[&str]) -> Result<(), Vec<BrokenRule>> {
    let chars = raw.chars().count();
    if chars > MAX_PASSWORD_CHARS {
        // Never truncated: longer passwords are refused outright.
        return Err(vec![rule("password", "too_long", "A password has at most 128 characters.")]);
    }
    let mut broken = Vec::new();
    if chars < MIN_PASSWORD_CHARS {
        broken.push(rule("password", "too_short", "A password has at least 8 characters."));
    }
    if !raw.chars().any(char::is_uppercase) {
        broken.push(rule("password", "missing_uppercase", "A password needs an upper-case letter."));
    }
    if !raw.chars().any(char::is_lowercase) {
        broken.push(rule("password", "missing_lowercase", "A password needs a lower-case letter."));
    }
    if !raw.chars().any(|c| c.is_ascii_digit()) {
        broken.push(rule("password", "missing_digit", "A password needs a digit."));
    }
    if raw.chars().any(char::is_control) {
        broken.push(rule("password", "invalid_characters", "A password cannot contain control characters."));
    }
    // Only then the costlier check: is it a common password, a dictionary
    // word with a digit tacked on, a keyboard walk, or built from the
    // account's own address or name? zxcvbn's bundled dictionaries decide.
    if broken.is_empty() && u8::from(zxcvbn::zxcvbn(raw, &guessable_words(context)).score()) < MIN_PASSWORD_SCORE {
        broken.push(rule(
            "password",
            "too_common",
            "This password is too easy to guess: avoid common passwords, names and words with a digit added.",
        ));
    }
    if broken.is_empty() { Ok(()) } else { Err(broken) }
}

/// The words of an address or name a guesser would try: `ada.lovelace@x.org`
/// gives `ada.lovelace`, `ada`, `lovelace`, `x`, `org`.
fn guessable_words<'a>(context: &[&'a str]) -> Vec<&'a str> {
    let mut words = Vec::new();
    for input in context {
        if let Some((local, _)) = input.split_once('@') {
            words.push(local);
        }
        words.extend(input.split(|c: char| !c.is_alphanumeric()).filter(|w| w.chars().count() >= 3));
    }
    words
}

/// An optional display name: trimmed, at most 100 characters, no control characters.
pub fn name(raw: Option<&str>) -> Result<Option<String>, BrokenRule> {
    let Some(name) = raw.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(rule("name", "too_long", "A name has at most 100 characters."));
    }
    if name.chars().any(char::is_control) {
        return Err(rule("name", "invalid_characters", "A name cannot contain control characters."));
    }
    Ok(Some(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_domain_is_lower_cased_and_key_fully() {
        let e = email("  Ada.Lovelace@Example.COM ").unwrap();
        assert_eq!(e.email, "Ada.Lovelace@example.com");
        assert_eq!(e.key, "ada.lovelace@example.com");
    }

    #[test]
    fn look_alike_local_parts_are_refused_not_folded() {
        let real = email("kate@example.com").unwrap();
        for look_alike in [
            "\u{212a}ate@example.com",         // KELVIN SIGN, lower-cases to k
            "\u{ff4b}ate@example.com",         // FULLWIDTH LATIN SMALL LETTER K
            "ka\u{0074}\u{0301}e@example.com", // combining accent
            "\u{0138}ate@example.com",         // LATIN SMALL LETTER KRA
            "kat\u{0435}@example.com",         // CYRILLIC SMALL LETTER IE
            "\u{fb01}le@example.com",          // LATIN SMALL LIGATURE FI
            "kate\u{200b}@example.com",        // ZERO WIDTH SPACE
        ] {
            let refused = email(look_alike);
            assert!(refused.is_err(), "{look_alike:?} accepted as {refused:?}");
        }
        assert_eq!(email("KATE@Example.COM").unwrap().key, real.key);
    }

    #[test]
    fn domains_take_their_idna_ascii_form() {
        assert_eq!(email("ada@B\u{fc}cher.Example").unwrap().email, "ada@xn--bcher-kva.example");
        assert_eq!(email("ada@xn--bcher-kva.example").unwrap().key, email("ada@b\u{fc}cher.example").unwrap().key);
        // A Cyrillic look-alike domain is another domain, not a fold of the Latin one.
        assert_ne!(email("ada@\u{0435}xample.com").unwrap().key, "ada@example.com");
        assert!(email("ada@exa_mple.com").is_err());
    }

    #[test]
    fn rejects_bad_emails() {
        for bad in ["", "plain", "a@b", "a b@c.com", "a@b.com\u{0}", "@x.com", "a@@x.com"] {
            assert!(email(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(email(&format!("{}@x.com", "a".repeat(260))).unwrap_err().rule, "too_long");
    }

    #[test]
    fn names_every_broken_password_rule() {
        let rules: Vec<_> = password("abc", &[]).unwrap_err().into_iter().map(|e| e.rule).collect();
        assert_eq!(rules, ["too_short", "missing_uppercase", "missing_digit"]);
        assert!(password("Correct1Horse", &[]).is_ok());
        assert!(password("Ünïcødé9pässwörd", &[]).is_ok());
        assert_eq!(password(&"Aa1".repeat(50), &[]).unwrap_err()[0].rule, "too_long");
    }

    #[test]
    fn common_and_personal_passwords_are_too_common() {
        for weak in ["Password1", "Qwerty123", "Welcome2024", "Iloveyou1", "Abcd1234"] {
            assert_eq!(password(weak, &[]).unwrap_err()[0].rule, "too_common", "{weak}");
        }
        // Strong in general, weak for the account it is built from.
        assert!(password("Quixotic7Zephyr", &[]).is_ok());
        let own = ["quixotic7zephyr@example.com", "Quixotic Zephyr"];
        assert_eq!(password("Quixotic7Zephyr", &own).unwrap_err()[0].rule, "too_common");
    }
}
