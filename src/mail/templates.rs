//! Mail bodies, rendered by askama from `templates/mail.html` and
//! `templates/mail.txt`. The HTML template escapes every value; the text
//! template is plain text and needs none.

use askama::Template;
use chrono::{DateTime, Utc};

use crate::store::outbox::MailKind;

/// Everything a mail says.
pub struct Letter {
    pub kind: MailKind,
    /// The account holder's name, if they gave one.
    pub name: Option<String>,
    /// The account's address.
    pub email: String,
    /// Whether the address is verified.
    pub verified: bool,
    /// What the reader should open: the action link, or where to reset a password.
    pub link: String,
    /// How long `link` works, when it is a token link.
    pub expires: Option<(std::time::Duration, DateTime<Utc>)>,
    /// When the event the mail reports happened.
    pub at: DateTime<Utc>,
    pub app_url: String,
}

pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The values both templates show, already formatted.
struct Fields<'a> {
    kind: &'a str,
    verified: bool,
    name: Option<&'a str>,
    email: &'a str,
    link: &'a str,
    expires_in: String,
    expires_at: String,
    at: String,
    app_url: &'a str,
}

#[derive(Template)]
#[template(path = "mail.html", config = "src/mail/askama.toml")]
struct Html<'a> {
    subject: &'a str,
    f: &'a Fields<'a>,
}

#[derive(Template)]
#[template(path = "mail.txt", config = "src/mail/askama.toml")]
struct Text<'a> {
    f: &'a Fields<'a>,
}

impl Letter {
    pub fn subject(&self) -> &'static str {
        match self.kind {
            MailKind::VerifyEmail => "Verify your email address",
            MailKind::SignupExisting => "Someone tried to sign up with your email address",
            MailKind::PasswordReset => "Reset your password",
            MailKind::PasswordChanged => "Your password was changed",
            MailKind::ChoosePassword => "Choose a password for your account",
            MailKind::MfaEnabled => "Two-step sign-in was turned on",
            MailKind::MfaDisabled => "Two-step sign-in was turned off",
            MailKind::RecoveryCodeUsed => "A recovery code was used to sign in",
            MailKind::PasskeyAdded => "A passkey was added to your account",
            MailKind::PasskeyRemoved => "A passkey was removed from your account",
        }
    }

    pub fn render(&self) -> Result<Rendered, askama::Error> {
        let subject = self.subject();
        let (expires_in, expires_at) = match self.expires {
            Some((ttl, at)) => (human_duration(ttl), stamp(at)),
            None => (String::new(), String::new()),
        };
        let f = Fields {
            kind: self.kind.as_str(),
            verified: self.verified,
            name: self.name.as_deref(),
            email: &self.email,
            link: &self.link,
            expires_in,
            expires_at,
            at: stamp(self.at),
            app_url: &self.app_url,
        };
        let text = Text { f: &f }.render()?;
        let html = Html { subject, f: &f }.render()?;
        Ok(Rendered { subject: subject.into(), text, html })
    }
}

fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// "24 hours", "1 hour", "90 minutes", "45 seconds".
fn human_duration(ttl: std::time::Duration) -> String {
    let secs = ttl.as_secs();
    let (n, unit) = if secs >= 3600 && secs.is_multiple_of(3600) {
        (secs / 3600, "hour")
    } else if secs >= 60 && secs.is_multiple_of(60) {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    if n == 1 { format!("1 {unit}") } else { format!("{n} {unit}s") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(kind: MailKind, name: Option<&str>) -> Letter {
        Letter {
            kind,
            name: name.map(Into::into),
            email: "ada@example.com".into(),
            verified: false,
            link: "https://app.example/verify-email?token=lk_ev_abc".into(),
            expires: Some((std::time::Duration::from_secs(86400), DateTime::UNIX_EPOCH)),
            at: DateTime::UNIX_EPOCH,
            app_url: "https://app.example".into(),
        }
    }

    #[test]
    fn names_are_escaped_in_html_and_kept_in_text() {
        let rendered = letter(MailKind::VerifyEmail, Some("<b>Ada</b> & co")).render().unwrap();
        assert!(rendered.html.contains("Hi &#60;b&#62;Ada&#60;/b&#62; &#38; co,"), "{}", rendered.html);
        assert!(!rendered.html.contains("<b>Ada"));
        assert!(rendered.text.starts_with("Hi <b>Ada</b> & co,"), "{}", rendered.text);
        assert!(rendered.text.contains("expires in 24 hours (1970-01-01 00:00 UTC)"), "{}", rendered.text);
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(std::time::Duration::from_secs(3600)), "1 hour");
        assert_eq!(human_duration(std::time::Duration::from_secs(5400)), "90 minutes");
        assert_eq!(human_duration(std::time::Duration::from_secs(45)), "45 seconds");
    }
}
