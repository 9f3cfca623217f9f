//! A database of its own for each test: a SQLite file in a temporary directory, or a fresh
//! PostgreSQL database (on the server in `COFFER_TEST_POSTGRES`, default the local one) that
//! is dropped when the test ends.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestDb {
    pub url: String,
    postgres: Option<(String, String)>,
    /// Whether the books were checked already, or are not to be (a test that breaks them).
    books_done: bool,
    _dir: Option<tempfile::TempDir>,
}

fn admin_url() -> String {
    std::env::var("COFFER_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl TestDb {
    pub async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("coffer.db").display());
                Self {
                    url,
                    postgres: None,
                    books_done: false,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                static SEQ: AtomicU32 = AtomicU32::new(0);
                let name = format!(
                    "coffer_test_{}_{}_{}",
                    std::process::id(),
                    SEQ.fetch_add(1, Ordering::Relaxed),
                    coffer::store::now_ms() % 1_000_000
                );
                let admin = admin_url();
                let mut connection =
                    sqlx::PgConnection::connect(&admin)
                        .await
                        .unwrap_or_else(|e| {
                            panic!("PostgreSQL at {admin} is needed for the postgres tests: {e}")
                        });
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut connection)
                    .await
                    .unwrap();
                let (base, _) = admin.rsplit_once('/').unwrap();
                Self {
                    url: format!("{base}/{name}"),
                    postgres: Some((admin, name)),
                    books_done: false,
                    _dir: None,
                }
            }
        }
    }

    /// Checks the ledger's invariants (done by every test that ends well, on its way out): a
    /// test that broke the books, anywhere, fails here.
    pub async fn assert_books_balance(&mut self) {
        self.books_done = true;
        let Ok(store) = coffer::store::Store::connect(&self.url, 1).await else {
            return;
        };
        let report = coffer::ledger::check(&store).await;
        store.close().await;
        // A database the service never migrated has no books to check.
        if let Ok(report) = report {
            assert!(
                report.is_clean(),
                "the books are broken after this test: {:#?}",
                report.violations
            );
        }
    }

    /// For a test that breaks the books on purpose: they are not checked on the way out.
    pub fn books_broken_on_purpose(&mut self) {
        self.books_done = true;
    }

    /// Checks the books and drops a PostgreSQL database now (both also done, later, by
    /// `Drop`).
    pub async fn drop_now(&mut self) {
        if !self.books_done && !std::thread::panicking() {
            self.assert_books_balance().await;
        }
        if let Some((admin, name)) = self.postgres.take() {
            drop_database(&admin, &name).await;
        }
    }
}

async fn drop_database(admin: &str, name: &str) {
    if let Ok(mut connection) = sqlx::PgConnection::connect(admin).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut connection)
        .await;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // From a thread of its own, since this may run inside an async runtime.
        if !self.books_done && !std::thread::panicking() {
            let url = self.url.clone();
            let checked = std::thread::spawn(move || {
                let mut db = TestDb {
                    url,
                    postgres: None,
                    books_done: false,
                    _dir: None,
                };
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(db.assert_books_balance());
            })
            .join();
            self.books_done = true;
            if let Err(panic) = checked {
                self.drop_postgres();
                std::panic::resume_unwind(panic);
            }
        }
        self.drop_postgres();
    }
}

impl TestDb {
    fn drop_postgres(&mut self) {
        // A test that panicked never reached `drop_now`: drop the database from a thread of
        // its own, since this may run inside an async runtime.
        if let Some((admin, name)) = self.postgres.take() {
            let _ = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(drop_database(&admin, &name));
            })
            .join();
        }
    }
}
