//! A PostgreSQL database of the run's own, created on the given server and dropped afterwards,
//! so a benchmark never meets an earlier run's rows.

use anyhow::{Context, Result};
use sqlx::Connection;

pub struct BenchDatabase {
    server: String,
    name: String,
    /// The database's URL, for Coffer's config.
    pub url: String,
}

impl BenchDatabase {
    /// `server` is a URL of a database to connect to for `CREATE DATABASE` (e.g. `postgres`).
    pub async fn create(server: &str) -> Result<Self> {
        let name = format!("coffer_bench_{}", std::process::id());
        let mut connection = sqlx::PgConnection::connect(server)
            .await
            .with_context(|| format!("cannot connect to PostgreSQL at {server}"))?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name}"
        )))
        .execute(&mut connection)
        .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut connection)
            .await?;
        let (base, _) = server
            .rsplit_once('/')
            .context("the PostgreSQL URL names no database")?;
        Ok(Self {
            server: server.to_owned(),
            url: format!("{base}/{name}"),
            name,
        })
    }

    /// Drops the database (Coffer must have stopped: `WITH (FORCE)` ends what is left).
    pub async fn drop_database(self) -> Result<()> {
        let mut connection = sqlx::PgConnection::connect(&self.server).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut connection)
        .await?;
        Ok(())
    }
}
