//! The `latchkey` command line.

use std::{io::IsTerminal, process::ExitCode};

use clap::{Parser, Subcommand};

use crate::{
    Config, api, startup, store,
    token::{keyfile::KeyDir, provider},
};

#[derive(Debug, Parser)]
#[command(name = "latchkey", version, about = "Authentication token service")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage the signing key ring in LATCHKEY_KEYS_DIR.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Inspect the mail outbox.
    Mail {
        #[command(subcommand)]
        action: MailAction,
    },
    /// Print the OpenAPI document.
    Openapi,
}

#[derive(Debug, Subcommand)]
pub enum MailAction {
    /// Count queued and failed mail, and list the failures with their last error.
    Status,
    /// Queue every failed mail again, with a fresh set of attempts.
    Retry,
}

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Create a ring (an active and a next key) in an empty keys directory.
    Generate,
    /// Promote next → active, active → retired, and add a new next key.
    Rotate,
    /// Show every key with its state.
    List,
    /// Delete retired keys whose tokens have all expired.
    Prune,
}

pub async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => startup::serve(config).await,
        Command::Migrate => {
            store::connect(&config.server).await?;
            println!("migrations applied to {}", config.server.redacted_database_url());
            Ok(())
        }
        Command::Openapi => {
            println!("{}", api::spec_json());
            Ok(())
        }
        Command::Keys { action } => keys(action, &config),
        Command::Mail { action } => mail(action, &config).await,
    }
}

async fn mail(action: MailAction, config: &Config) -> anyhow::Result<()> {
    let db = store::connect(&config.server).await?;
    match action {
        MailAction::Status => {
            let counts = store::outbox::counts(&db).await?;
            println!("queued: {}\nfailed: {}", counts.pending, counts.failed);
            for row in store::outbox::failed(&db).await? {
                println!(
                    "{} {} queued {} after {} attempt(s): {}",
                    row.id,
                    row.kind,
                    row.created_at.to_rfc3339(),
                    row.attempts,
                    row.last_error.unwrap_or_default()
                );
            }
        }
        MailAction::Retry => {
            let n = store::outbox::requeue_failed(&db, chrono::Utc::now()).await?;
            println!("queued {n} failed mail(s) again; a running server sends them within LATCHKEY_MAIL_POLL_MS");
        }
    }
    Ok(())
}

fn keys(action: KeysAction, config: &Config) -> anyhow::Result<()> {
    provider::install();
    let dir = KeyDir::new(&config.tokens.keys_dir);
    match action {
        KeysAction::Generate => {
            if dir.ensure(config.tokens.signing_alg, chrono::Utc::now())? {
                println!("generated a {} key ring in {}", config.tokens.signing_alg, dir.path().display());
            } else {
                anyhow::bail!("{} already holds a key ring; use `latchkey keys rotate`", dir.path().display());
            }
        }
        KeysAction::Rotate => {
            dir.rotate(config.tokens.signing_alg, chrono::Utc::now())?;
            println!("rotated; running servers pick the new ring up within {} ms", config.tokens.keys_reload_ms);
            print_ring(&dir)?;
        }
        KeysAction::List => print_ring(&dir)?,
        KeysAction::Prune => {
            // A retired key is kept until the last token it signed has expired.
            let keep_for = config.tokens.access_token_ttl_secs + config.tokens.clock_leeway_secs;
            let pruned = dir.prune(chrono::Duration::seconds(keep_for as i64), chrono::Utc::now())?;
            println!(
                "pruned {} key(s){}",
                pruned.len(),
                if pruned.is_empty() { String::new() } else { format!(": {}", pruned.join(", ")) }
            );
        }
    }
    Ok(())
}

fn print_ring(dir: &KeyDir) -> anyhow::Result<()> {
    let Some(ring) = dir.read_ring()? else {
        anyhow::bail!("no key ring in {}", dir.path().display());
    };
    for key in ring.keys {
        println!(
            "{:<44} {:<6} {:<8} created {}",
            key.kid,
            key.alg.as_str(),
            format!("{:?}", key.state).to_lowercase(),
            key.created_at.to_rfc3339()
        );
    }
    Ok(())
}

/// The whole `latchkey` program: parse `args`, load the configuration, run.
/// The binary is this one call; the benchmark runs it too, so it measures
/// exactly what ships.
pub fn main<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    tune_allocator();
    private_files();
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let config = match Config::load() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let logs = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new(&config.server.log));
    match config.server.log_format {
        // Span fields (the request id) are in each line: in `spans`, outermost first, for JSON.
        crate::config::LogFormat::Json => logs.json().with_current_span(false).with_span_list(true).init(),
        crate::config::LogFormat::Text => logs.with_ansi(std::io::stdout().is_terminal()).init(),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, config)) {
        Ok(()) => ExitCode::SUCCESS,
        // A value that parsed but could not be built (an SMTP URL, the redirect allow-list).
        Err(e) if e.downcast_ref::<crate::config::ConfigError>().is_some() => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Every file and folder latchkey creates is its owner's alone (0600 and
/// 0700): the SQLite database and its journals, mail written to files, the
/// key ring. Nothing it writes is meant for other users of the machine.
fn private_files() {
    #[cfg(unix)]
    // SAFETY: umask only sets this process's file-creation mask.
    unsafe {
        libc::umask(0o077);
    }
}

/// glibc keeps freed large blocks in per-thread arenas and raises its mmap
/// threshold after each big free, so argon2's working memory (12 MiB) would stay
/// resident after every login. A fixed threshold makes such blocks mmap'd and
/// returned to the system as soon as a hash is done.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tunables; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
