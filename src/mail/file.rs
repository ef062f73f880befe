//! The development mailer: each mail becomes an `.eml` file (open it with
//! any mail program) and its link is logged, so no mail server is needed.

use std::path::PathBuf;

use lettre::{AsyncFileTransport, AsyncTransport, Tokio1Executor, message::Mailbox};

use super::{Mailer, Outgoing, SendError};

pub struct FileMailer {
    dir: PathBuf,
    transport: AsyncFileTransport<Tokio1Executor>,
    from: Mailbox,
}

impl FileMailer {
    pub fn new(dir: PathBuf, from: Mailbox) -> Self {
        Self { transport: AsyncFileTransport::new(&dir), dir, from }
    }
}

#[async_trait::async_trait]
impl Mailer for FileMailer {
    async fn send(&self, mail: &Outgoing) -> Result<(), SendError> {
        let message = mail.message(&self.from)?;
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| SendError::Transient(format!("creating {}: {e}", self.dir.display())))?;
        let id = self.transport.send(message).await.map_err(|e| SendError::Transient(e.to_string()))?;
        let file = self.dir.join(format!("{id}.eml"));
        // The process umask makes it 0600 already; this holds even if it was changed.
        crate::secret::make_private(&file).map_err(|e| SendError::Transient(format!("{}: {e}", file.display())))?;
        match &mail.link {
            Some(link) => {
                tracing::info!(to = %mail.to.email, file = %file.display(), "mail: {} — {link}", mail.subject)
            }
            None => tracing::info!(to = %mail.to.email, file = %file.display(), "mail: {}", mail.subject),
        }
        Ok(())
    }
}
