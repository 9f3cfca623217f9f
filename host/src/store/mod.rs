//! The database: one sqlx pool over SQLite (the embedded default) or PostgreSQL, chosen by the
//! URL. Areas own their tables and their SQL; this module only opens, migrates and hands out
//! connections and transactions.
//!
//! Both backends run the same SQL: `$1` placeholders (sqlx binds them by number on SQLite too),
//! `BIGINT` Unix milliseconds for time, `TEXT` ids, and conditional `UPDATE`s for anything
//! two requests could race on.

mod ids;
pub mod instance;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use ids::{new_id, random_token};

/// A transaction on the store, whatever the backend.
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

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

/// The connection pools and what kind of database is behind them. Cheap to clone.
///
/// SQLite allows one writer at a time. Writers that find the database locked wait in SQLite's
/// busy handler, which sleeps in growing steps: under load that turns into tails of hundreds
/// of milliseconds. So on SQLite every write goes through a pool of exactly one connection,
/// where waiting is a fair queue in Coffer, and reads use the other pool (WAL lets them run
/// beside the writer). On PostgreSQL both are the same pool.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    writer: AnyPool,
    backend: Backend,
}

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
        let writer = match backend {
            Backend::Sqlite => Self::pool_options(backend, 1).connect_with(options).await?,
            Backend::Postgres => pool.clone(),
        };
        Ok(Self {
            pool,
            writer,
            backend,
        })
    }

    fn pool_options(backend: Backend, max_connections: u32) -> AnyPoolOptions {
        AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; the busy timeout covers
                        // other processes (a `coffer migrate`, an operator's sqlite3 shell).
                        connection
                            .execute(
                                "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
                                 PRAGMA foreign_keys = ON;",
                            )
                            .await?;
                    }
                    Ok(())
                })
            })
    }

    /// Brings the schema up to date. Safe to run on every start and from several instances.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.writer).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.writer).await?,
        }
        Ok(())
    }

    /// Connects and migrates.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let store = Self::connect(url, max_connections).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// For reads (and, on PostgreSQL, everything).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// For writes outside a transaction.
    pub fn writer(&self) -> &AnyPool {
        &self.writer
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A transaction that will write. On SQLite it comes from the single writer connection and
    /// takes the write lock up front (`BEGIN IMMEDIATE`), so a transaction that reads and then
    /// writes never fails on a lock taken in between. Never hold one while asking the store for
    /// another: on SQLite that waits forever.
    pub async fn begin_write(&self) -> Result<Tx, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.writer.begin().await,
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }
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
