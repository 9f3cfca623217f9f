//! The database: SQLite (the embedded default) or PostgreSQL, chosen by the URL, through sqlx.
//! Areas own their tables and their SQL; this module opens and migrates the database, lends a
//! pool for reads, and runs writes as jobs (see `writer`): batched into shared commits on
//! SQLite, a transaction each on PostgreSQL.
//!
//! Both backends run the same SQL: `$1` placeholders (sqlx binds them by number on SQLite too),
//! `BIGINT` Unix milliseconds for time, `TEXT` ids, and conditional `UPDATE`s for anything
//! two requests could race on.

mod ids;
pub mod instance;
mod writer;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

/// How long a read waits for a free pooled connection before it fails (the pool is sized by
/// `database.max_connections`; a wait this long is an overload, not a queue).
const MAX_CONNECTION_WAIT: Duration = Duration::from_secs(10);

pub use ids::{new_id, random_token};
pub use writer::{Job, MAX_BATCH_JOBS, WriteStats};

/// The connection a write job runs its statements on, inside the job's transaction (see
/// [`Store::write`]).
pub type Tx = sqlx::AnyConnection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {0:?}: use sqlite://... or postgres://...")]
    UnsupportedUrl(String),
    #[error(
        "an in-memory SQLite database is not supported: every connection would get its own; use a file"
    )]
    InMemory,
    #[error("cannot create the database directory {path}: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// How writes reach the database (see `writer`).
#[derive(Clone)]
enum Writes {
    /// The committer, which owns SQLite's only write connection.
    Sqlite(writer::Committer),
    /// A transaction of its own per job, on the pool.
    Postgres,
}

/// The database: a pool for reads (and, on PostgreSQL, writes) and the write path. Cheap to
/// clone.
///
/// On SQLite, reads use the pool (WAL lets them run beside the writer) and every write goes
/// through the committer, which batches concurrent writes into one commit.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    writes: Writes,
    backend: Backend,
}

/// How long one SQLite connection waits on a lock another process holds (a `coffer migrate`,
/// an operator's sqlite3 shell) before failing.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;

impl Store {
    /// Connects (creating a SQLite file and its directory if needed). Does not migrate.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        let mut url = url.to_owned();
        if backend == Backend::Sqlite {
            url = prepare_sqlite_url(&url)?;
        }
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = Self::pool_options(backend, max_connections)
            .connect_with(options.clone())
            .await?;
        let writes = match backend {
            Backend::Sqlite => {
                let mut connection = options.connect().await?;
                sqlite_session(&mut connection).await?;
                Writes::Sqlite(writer::Committer::start(connection))
            }
            Backend::Postgres => Writes::Postgres,
        };
        Ok(Self {
            pool,
            writes,
            backend,
        })
    }

    fn pool_options(backend: Backend, max_connections: u32) -> AnyPoolOptions {
        AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(MAX_CONNECTION_WAIT)
            // No ping before every use: on SQLite each one is a round trip to the connection's
            // thread, as costly as the query; a broken connection fails its query instead.
            .test_before_acquire(false)
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        sqlite_session(connection).await?;
                    }
                    Ok(())
                })
            })
    }

    /// Brings the schema up to date. Safe to run on every start and from several instances.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    /// Connects and migrates.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let store = Self::connect(url, max_connections).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// For reads.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs `job` with `input` in a write transaction and returns its result once committed
    /// (see `writer` for how, and what a job may do). An error from the job rolls back what
    /// it wrote and nothing else.
    pub async fn write<I, T, E>(&self, input: I, job: Job<I, T, E>) -> Result<T, E>
    where
        I: Send + Sync + 'static,
        T: Send + 'static,
        E: From<sqlx::Error> + Send + 'static,
    {
        match &self.writes {
            Writes::Sqlite(committer) => committer.write(input, job).await,
            Writes::Postgres => {
                let mut tx = self.pool.begin().await?;
                let done = job(&mut tx, &input).await?;
                tx.commit().await?;
                Ok(done)
            }
        }
    }

    /// What the SQLite committer has done (batches, their sizes); `None` on PostgreSQL.
    pub fn write_stats(&self) -> Option<&WriteStats> {
        match &self.writes {
            Writes::Sqlite(committer) => Some(&committer.stats),
            Writes::Postgres => None,
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Every SQLite connection's settings: WAL lets readers run beside the writer; FULL makes
/// every commit durable (fsync), which the committer's batches pay once per batch; the busy
/// timeout covers other processes.
async fn sqlite_session(connection: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
    connection
        .execute(sqlx::AssertSqlSafe(format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
             PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; PRAGMA foreign_keys = ON;"
        )))
        .await?;
    Ok(())
}

/// Creates the directory of a SQLite file and makes sure the file is created on first start.
fn prepare_sqlite_url(url: &str) -> Result<String, StoreError> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || query.contains("mode=memory") {
        return Err(StoreError::InMemory);
    }
    if let Some(dir) = Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let query = if query.is_empty() {
        "mode=rwc".to_owned()
    } else if query.contains("mode=") {
        query.to_owned()
    } else {
        format!("{query}&mode=rwc")
    };
    Ok(format!("sqlite://{path}?{query}"))
}

/// Whether a database error is a unique-constraint violation (a row that already exists).
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db.is_unique_violation(),
        _ => false,
    }
}

/// Reads a flag column: BOOLEAN on PostgreSQL, INTEGER 0/1 on SQLite (the Any driver cannot
/// read SQLite's BOOLEAN type).
pub fn flag(row: &sqlx::any::AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    use sqlx::Row;
    match row.try_get::<bool, _>(column) {
        Ok(value) => Ok(value),
        Err(_) => row.try_get::<i64, _>(column).map(|v| v != 0),
    }
}

/// Most rows one page of an operator's listing holds.
pub const MAX_PAGE_ROWS: u32 = 200;

/// Reads a listing's `limit`: 1 to [`MAX_PAGE_ROWS`], refused otherwise (never clamped: a filter
/// that would be ignored is an error, not a default).
pub fn page_limit<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u32>, D::Error> {
    let limit = <u32 as serde::Deserialize>::deserialize(deserializer)?;
    if (1..=MAX_PAGE_ROWS).contains(&limit) {
        Ok(Some(limit))
    } else {
        Err(serde::de::Error::custom(format!(
            "limit must be 1 to {MAX_PAGE_ROWS}, not {limit}"
        )))
    }
}

/// Milliseconds since the Unix epoch: how every timestamp is stored.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `$first, $first+1, ...`: `count` numbered placeholders, for statements over a batch.
pub fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_create_their_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nested/coffer.db");
        let url = prepare_sqlite_url(&format!("sqlite://{}", file.display())).unwrap();
        assert!(url.ends_with("?mode=rwc"), "{url}");
        assert!(file.parent().unwrap().is_dir());
        let kept = prepare_sqlite_url("sqlite://x.db?mode=ro").unwrap();
        assert_eq!(kept, "sqlite://x.db?mode=ro");
        assert!(matches!(
            prepare_sqlite_url("sqlite::memory:"),
            Err(StoreError::InMemory)
        ));
    }

    #[tokio::test]
    async fn unknown_backends_are_refused() {
        let error = Store::connect("mysql://root@localhost/game_db", 1)
            .await
            .err()
            .unwrap();
        assert!(matches!(error, StoreError::UnsupportedUrl(_)), "{error}");
    }
}
