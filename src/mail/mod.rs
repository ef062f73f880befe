//! Mail: what is sent (templates), how (SMTP, or `.eml` files in
//! development) and when (the outbox worker). Requests never send mail
//! themselves; they queue it with `store::outbox::enqueue`.

pub mod file;
pub mod smtp;
pub mod templates;
pub mod worker;

use std::sync::Arc;

use lettre::{
    Message,
    message::{Mailbox, MultiPart},
};

/// One rendered mail, ready to go.
pub struct Outgoing {
    pub to: Mailbox,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The token link it carries, if any (logged only by the file mailer).
    pub link: Option<String>,
}

impl Outgoing {
    /// The MIME message: `multipart/alternative` with text and HTML parts.
    pub fn message(&self, from: &Mailbox) -> Result<Message, SendError> {
        Message::builder()
            .from(from.clone())
            .to(self.to.clone())
            .subject(&self.subject)
            .multipart(MultiPart::alternative_plain_html(self.text.clone(), self.html.clone()))
            .map_err(|e| SendError::Permanent(format!("building the message: {e}")))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth retrying: the server is down, busy or answered 4xx.
    #[error("{0}")]
    Transient(String),
    /// Retrying cannot help: the server refused the message (5xx), or it cannot be built.
    #[error("{0}")]
    Permanent(String),
}

/// Where mail goes. Implementations must be safe to call concurrently.
#[async_trait::async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, mail: &Outgoing) -> Result<(), SendError>;
}

/// The mailer the configuration asks for, and a line describing it for the start-up log.
pub fn from_config(config: &crate::config::Mail) -> anyhow::Result<(Arc<dyn Mailer>, String)> {
    let from: Mailbox = config.mail_from.parse()?;
    Ok(match (&config.smtp_url, config.redacted_smtp_url()) {
        (Some(url), Some(shown)) => {
            (Arc::new(smtp::SmtpMailer::new(url.expose(), from)?), format!("mail: SMTP via {shown}"))
        }
        _ => (
            Arc::new(file::FileMailer::new(config.mail_dir.clone(), from)),
            format!(
                "mail: written as .eml files to {}/ with links logged (set LATCHKEY_SMTP_URL to send)",
                config.mail_dir.display()
            ),
        ),
    })
}
