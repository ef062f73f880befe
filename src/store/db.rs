//! The database handle every store function runs on.
//!
//! With prepared statements on (the default) it is the connection pool, and
//! each connection keeps its parsed statements (sqlx's statement cache).
//!
//! With them off (`LATCHKEY_DATABASE_PREPARED_STATEMENTS=false`, for a pooler
//! in transaction mode, README "Managed Postgres and poolers") nothing may
//! live on a server connection past the transaction the pooler lent it for.
//! sqlx still names every statement it parses, cache or no cache, and parses
//! and executes in two round trips the pooler may route to different server
//! connections. So in that mode:
//! - every statement runs inside a transaction (one is opened around a
//!   statement sent on its own), which pins one server connection;
//! - a transaction starts with `DEALLOCATE ALL`, clearing names another
//!   client left on that connection, and ends with it before `COMMIT`, so
//!   none of latchkey's outlives the transaction.
//!
//! A transaction that fails is rolled back without the closing
//! `DEALLOCATE ALL` (an aborted transaction accepts nothing else); the next
//! one on that server connection clears what it left.
//!
//! In both modes the handle fails fast while the database is away: the first
//! error that says it is unreachable marks it down, every statement after
//! that fails at once (a 503) instead of waiting out the pool's acquire
//! timeout, and a watcher pings it until it answers again.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult, IsolationLevel,
    QueryResult, Statement, TransactionError, TransactionOptions, TransactionSession, TransactionTrait,
};

const CLEAR: &str = "DEALLOCATE ALL";
/// How often the watcher pings a database that is down, and how long it waits for an answer.
const PROBE_EVERY: Duration = Duration::from_millis(250);
const PROBE_TIMEOUT: Duration = Duration::from_millis(1000);

/// Whether the database was last seen unreachable.
#[derive(Debug, Default)]
struct Health {
    down: AtomicBool,
    tripped: tokio::sync::Notify,
}

impl Health {
    /// Fails at once while the database is down.
    fn check(&self) -> Result<(), DbErr> {
        if self.down.load(Ordering::Acquire) {
            return Err(DbErr::Conn(sea_orm::RuntimeErr::Internal("the database is unreachable".into())));
        }
        Ok(())
    }

    /// Marks the database down when `result` says it is unreachable.
    fn observe<T>(&self, result: Result<T, DbErr>) -> Result<T, DbErr> {
        if let Err(e) = &result
            && crate::error::is_unreachable(e)
            && !self.down.swap(true, Ordering::AcqRel)
        {
            self.tripped.notify_one();
        }
        result
    }

    /// Runs `op` unless the database is down, and learns from its outcome.
    async fn guard<T>(&self, op: impl Future<Output = Result<T, DbErr>>) -> Result<T, DbErr> {
        self.check()?;
        self.observe(op.await)
    }
}

/// Each time the database is marked down: pings it until it answers, then marks it up.
async fn watch(pool: DatabaseConnection, health: Arc<Health>) {
    loop {
        health.tripped.notified().await;
        tracing::warn!("database unreachable: requests that need it answer 503 until it answers again");
        while !matches!(tokio::time::timeout(PROBE_TIMEOUT, pool.ping()).await, Ok(Ok(()))) {
            tokio::time::sleep(PROBE_EVERY).await;
        }
        health.down.store(false, Ordering::Release);
        tracing::info!("database reachable again");
    }
}

/// The pool, whether statements may outlive their transaction, and whether
/// the database is reachable.
#[derive(Clone, Debug)]
pub struct Db {
    pool: DatabaseConnection,
    /// Off: every statement in a transaction that clears statement names.
    prepared: bool,
    health: Arc<Health>,
}

impl Db {
    /// Wraps `pool` and starts the watcher (on the current Tokio runtime).
    pub fn new(pool: DatabaseConnection, prepared: bool) -> Self {
        // SQLite has no pooler in front of it: the setting only matters for Postgres.
        let prepared = prepared || pool.get_database_backend() != DbBackend::Postgres;
        let health = Arc::new(Health::default());
        tokio::spawn(watch(pool.clone(), health.clone()));
        Self { pool, prepared, health }
    }

    /// Whether the database answers (at once `false` while it is marked down).
    pub async fn ping(&self) -> bool {
        self.health.guard(self.pool.ping()).await.is_ok()
    }

    pub fn pool(&self) -> &DatabaseConnection {
        &self.pool
    }

    /// Whether statements are kept per connection (false: none outlives its transaction).
    pub fn prepared_statements(&self) -> bool {
        self.prepared
    }

    /// Runs `work` in a transaction of its own and commits it.
    async fn alone<T, F>(&self, work: F) -> Result<T, DbErr>
    where
        F: for<'t> FnOnce(&'t Txn) -> Pin<Box<dyn Future<Output = Result<T, DbErr>> + Send + 't>> + Send,
        T: Send,
    {
        let txn = self.begin().await?;
        let out = work(&txn).await?;
        txn.commit().await?;
        Ok(out)
    }

    async fn opened(&self, txn: Result<DatabaseTransaction, DbErr>) -> Result<Txn, DbErr> {
        let txn = self.health.observe(txn)?;
        if !self.prepared {
            self.health.observe(txn.execute_unprepared(CLEAR).await)?;
        }
        Ok(Txn { inner: txn, clear_on_commit: !self.prepared, health: self.health.clone() })
    }
}

/// A transaction on a `Db` (or a savepoint inside one).
#[derive(Debug)]
pub struct Txn {
    inner: DatabaseTransaction,
    /// Clear statement names before `COMMIT` (the outermost transaction, prepared statements off).
    clear_on_commit: bool,
    health: Arc<Health>,
}

impl Txn {
    /// The transaction itself, for APIs that take sea-orm's type (migrations).
    pub fn inner(&self) -> &DatabaseTransaction {
        &self.inner
    }

    pub async fn commit(self) -> Result<(), DbErr> {
        if self.clear_on_commit {
            self.health.observe(self.inner.execute_unprepared(CLEAR).await)?;
        }
        self.health.observe(self.inner.commit().await)
    }

    pub async fn rollback(self) -> Result<(), DbErr> {
        self.health.observe(self.inner.rollback().await)
    }

    fn nested(&self, inner: Result<DatabaseTransaction, DbErr>) -> Result<Self, DbErr> {
        let inner = self.health.observe(inner)?;
        Ok(Self { inner, clear_on_commit: false, health: self.health.clone() })
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Db {
    fn get_database_backend(&self) -> DbBackend {
        self.pool.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        if self.prepared {
            return self.health.guard(self.pool.execute_raw(stmt)).await;
        }
        self.alone(|txn| Box::pin(txn.execute_raw(stmt))).await
    }

    /// The simple query protocol: nothing is named, so nothing needs wrapping.
    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.health.guard(self.pool.execute_unprepared(sql)).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        if self.prepared {
            return self.health.guard(self.pool.query_one_raw(stmt)).await;
        }
        self.alone(|txn| Box::pin(txn.query_one_raw(stmt))).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        if self.prepared {
            return self.health.guard(self.pool.query_all_raw(stmt)).await;
        }
        self.alone(|txn| Box::pin(txn.query_all_raw(stmt))).await
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Txn {
    fn get_database_backend(&self) -> DbBackend {
        self.inner.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.health.observe(self.inner.execute_raw(stmt).await)
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.health.observe(self.inner.execute_unprepared(sql).await)
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.health.observe(self.inner.query_one_raw(stmt).await)
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.health.observe(self.inner.query_all_raw(stmt).await)
    }
}

#[async_trait::async_trait]
impl TransactionSession for Txn {
    async fn commit(self) -> Result<(), DbErr> {
        Txn::commit(self).await
    }

    async fn rollback(self) -> Result<(), DbErr> {
        Txn::rollback(self).await
    }
}

/// Runs `callback` in `txn`, committing on `Ok` and rolling back on `Err`.
async fn run<F, T, E>(txn: Txn, callback: F) -> Result<T, TransactionError<E>>
where
    F: for<'c> FnOnce(&'c Txn) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>> + Send,
    T: Send,
    E: std::fmt::Display + std::fmt::Debug + Send,
{
    match callback(&txn).await {
        Ok(out) => {
            txn.commit().await.map_err(TransactionError::Connection)?;
            Ok(out)
        }
        Err(e) => {
            txn.rollback().await.map_err(TransactionError::Connection)?;
            Err(TransactionError::Transaction(e))
        }
    }
}

#[async_trait::async_trait]
impl TransactionTrait for Db {
    type Transaction = Txn;

    async fn begin(&self) -> Result<Txn, DbErr> {
        self.health.check()?;
        self.opened(self.pool.begin().await).await
    }

    async fn begin_with_config(
        &self,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<Txn, DbErr> {
        self.health.check()?;
        self.opened(self.pool.begin_with_config(isolation_level, access_mode).await).await
    }

    async fn begin_with_options(&self, options: TransactionOptions) -> Result<Txn, DbErr> {
        self.health.check()?;
        self.opened(self.pool.begin_with_options(options).await).await
    }

    async fn transaction<F, T, E>(&self, callback: F) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(&'c Txn) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>> + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        run(self.begin().await.map_err(TransactionError::Connection)?, callback).await
    }

    async fn transaction_with_config<F, T, E>(
        &self,
        callback: F,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(&'c Txn) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>> + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        let txn = self.begin_with_config(isolation_level, access_mode).await.map_err(TransactionError::Connection)?;
        run(txn, callback).await
    }
}

/// A savepoint inside a transaction: the outer transaction does the clearing.
#[async_trait::async_trait]
impl TransactionTrait for Txn {
    type Transaction = Txn;

    async fn begin(&self) -> Result<Txn, DbErr> {
        self.nested(self.inner.begin().await)
    }

    async fn begin_with_config(
        &self,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<Txn, DbErr> {
        self.nested(self.inner.begin_with_config(isolation_level, access_mode).await)
    }

    async fn begin_with_options(&self, options: TransactionOptions) -> Result<Txn, DbErr> {
        self.nested(self.inner.begin_with_options(options).await)
    }

    async fn transaction<F, T, E>(&self, callback: F) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(&'c Txn) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>> + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        run(self.begin().await.map_err(TransactionError::Connection)?, callback).await
    }

    async fn transaction_with_config<F, T, E>(
        &self,
        callback: F,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(&'c Txn) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>> + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        let txn = self.begin_with_config(isolation_level, access_mode).await.map_err(TransactionError::Connection)?;
        run(txn, callback).await
    }
}
