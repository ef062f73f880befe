//! Persistence: the only place that knows tables and SQL. Functions take a
//! connection (or transaction) and return entity models or plain outcomes.

pub mod cleanup;
mod db;
pub mod email_tokens;
pub mod events;
pub mod mfa;
pub mod oauth;
pub mod outbox;
pub mod passkeys;
pub mod profiles;
pub mod rate_limits;
pub mod rotation;
pub mod sessions;
pub mod signup_attempts;
pub mod status;
pub mod users;

use std::time::Duration;

use anyhow::Context;
use migration::MigratorTrait;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, TransactionTrait};

pub use self::db::Db;
use crate::config::Server;

/// Connects and brings the schema up to date.
pub async fn connect(config: &Server) -> anyhow::Result<Db> {
    let mut options = ConnectOptions::new(config.database_url.expose());
    options
        .max_connections(config.db_max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(5))
        // Ping only connections idle long enough to have been dropped: a ping
        // on every checkout would double the round trips of a refresh.
        .test_before_acquire_if_idle_for(Duration::from_secs(30))
        .sqlx_logging(false);
    if !config.database_prepared_statements {
        // Nothing to reuse: sqlx would only keep names a pooler cannot keep.
        options.map_sqlx_postgres_opts(|pg| pg.statement_cache_capacity(0));
    }
    if config.is_sqlite() {
        let dir = sqlite_path(config.database_url.expose()).and_then(|p| p.parent().map(ToOwned::to_owned));
        if let Some(dir) = dir.filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        // SQLite has one writer; one connection serialises every transaction
        // instead of failing them with SQLITE_BUSY.
        options.max_connections(1);
    }
    let db = Database::connect(options)
        .await
        .with_context(|| format!("connecting to {}", config.redacted_database_url()))?;
    if config.is_sqlite() {
        db.execute_unprepared("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;").await?;
        // Created 0600 (the process umask); files from before that are tightened.
        if let Some(path) = sqlite_path(config.database_url.expose()) {
            for suffix in ["", "-wal", "-shm"] {
                let mut file = path.clone().into_os_string();
                file.push(suffix);
                crate::secret::make_private(std::path::Path::new(&file))?;
            }
        }
    }
    let db = Db::new(db, config.database_prepared_statements);
    if db.prepared_statements() {
        migration::Migrator::up(db.pool(), None).await.context("running migrations")?;
    } else {
        // One transaction, so the migrator's statements get the same care as
        // every other (and Postgres applies the schema change whole or not at all).
        let txn = db.begin().await?;
        migration::Migrator::up(txn.inner(), None).await.context("running migrations")?;
        txn.commit().await.context("committing migrations")?;
    }
    Ok(db)
}

/// The file behind a `sqlite:` URL.
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| path.into())
}

/// Whether the database answers.
pub async fn ping(db: &Db) -> bool {
    db.ping().await
}

/// The pool's connections: (idle, in use).
pub fn pool_stats(db: &Db) -> (u64, u64) {
    let db = db.pool();
    let (size, idle) = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
    };
    (idle as u64, u64::from(size).saturating_sub(idle as u64))
}
