//! A real SMTP server for the mail tests: `tests/smtp/server.py`, built on
//! aiosmtpd, in its own process (aiosmtpd is installed by `tools::python`).

use std::{path::Path, process::Stdio, time::Duration};

use serde::Deserialize;

use crate::tools;
use tempfile::TempDir;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// One accepted message, as the server parsed it.
#[derive(Debug, Clone, Deserialize)]
pub struct Mail {
    pub rcpt_tos: Vec<String>,
    pub from: String,
    pub to: String,
    pub subject: String,
    pub content_type: String,
    pub part_types: Vec<String>,
    pub text: String,
    pub html: String,
    pub text_links: Vec<String>,
    pub html_links: Vec<String>,
}

impl Mail {
    /// The one link in the text part that starts with `prefix`; the HTML part
    /// must carry the same link.
    pub fn link(&self, prefix: &str) -> String {
        let found: Vec<_> = self.text_links.iter().filter(|l| l.starts_with(prefix)).collect();
        assert_eq!(found.len(), 1, "one {prefix}… link in the text part of {self:#?}");
        assert!(self.html_links.contains(found[0]), "the HTML part links to {} too: {self:#?}", found[0]);
        found[0].clone()
    }

    /// The `token` query parameter of the link starting with `prefix`.
    pub fn token(&self, prefix: &str) -> String {
        let link = self.link(prefix);
        link.split_once("?token=").expect("a token parameter").1.to_string()
    }
}

pub struct SmtpServer {
    pub port: u16,
    outdir: TempDir,
    child: Option<Child>,
    /// The login it asks for, if any.
    auth: Option<(String, String)>,
}

/// A local port nothing listens on (yet).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl SmtpServer {
    pub async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    pub async fn start_on(port: u16) -> Self {
        let outdir = tempfile::tempdir().unwrap();
        let mut server = Self { port, outdir, child: None, auth: None };
        server.launch().await;
        server
    }

    /// A server that takes mail only after a login with `user` and `password`.
    pub async fn start_with_login(user: &str, password: &str) -> Self {
        let outdir = tempfile::tempdir().unwrap();
        let auth = Some((user.to_string(), password.to_string()));
        let mut server = Self { port: free_port(), outdir, child: None, auth };
        server.launch().await;
        server
    }

    async fn launch(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/server.py");
        let mut child = Command::new(tools::python("smtp", &["tests/smtp/requirements.txt"]))
            .arg(script)
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--outdir")
            .arg(self.outdir.path())
            .args(self.auth.iter().flat_map(|(user, password)| ["--auth".to_string(), format!("{user}:{password}")]))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("starting the SMTP server");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the SMTP server starts within 30 s")
            .unwrap();
        assert_eq!(line.as_deref(), Some(format!("ready {}", self.port).as_str()), "SMTP server start-up");
        self.child = Some(child);
    }

    /// Where each received message is written as `<n>.json`.
    pub fn outdir(&self) -> &Path {
        self.outdir.path()
    }

    pub fn url(&self) -> String {
        match &self.auth {
            Some((user, password)) => format!("smtp://{user}:{password}@127.0.0.1:{}", self.port),
            None => format!("smtp://127.0.0.1:{}", self.port),
        }
    }

    /// Every message received so far, oldest first.
    pub fn received(&self) -> Vec<Mail> {
        let mut files: Vec<_> = std::fs::read_dir(self.outdir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files.iter().map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()).collect()
    }

    /// Messages to `address`.
    pub fn received_by(&self, address: &str) -> Vec<Mail> {
        self.received().into_iter().filter(|m| m.rcpt_tos.iter().any(|r| r == address)).collect()
    }

    /// Waits until `address` has received `n` messages; returns them, oldest first.
    pub async fn wait_for(&self, address: &str, n: usize) -> Vec<Mail> {
        for _ in 0..300 {
            let mails = self.received_by(address);
            if mails.len() >= n {
                assert_eq!(mails.len(), n, "exactly {n} mail(s) to {address}");
                return mails;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{address} did not receive {n} mail(s) within 15 s; got {:#?}", self.received_by(address));
    }

    /// The `n`th (1-based) message to `address`, waiting for it.
    pub async fn nth(&self, address: &str, n: usize) -> Mail {
        self.wait_for(address, n).await.pop().unwrap()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
    }
}
