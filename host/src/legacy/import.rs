//! `coffer import-legacy`: the old system's MariaDB/MySQL `game_db` (tables `users` and
//! `payment_records` as its account service created them) into the legacy game. Plaintext
//! passwords are hashed with Argon2id on the way. Running it again imports nothing twice:
//! players are matched by their old id, records by their old id and their order number. A
//! pid that a different Coffer account already has is never merged into it.

use std::collections::HashSet;

use sqlx::mysql::MySqlConnection;
use sqlx::{Connection, Row};
use tokio::task::JoinSet;

use super::LegacyError;
use super::accounts::{ImportedProfile, insert_player, player_by_pid, validate_pid};
use crate::games::GameId;
use crate::players::Players;
use crate::store::{Backend, Store, now_ms};

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub players_imported: u64,
    /// Imported by an earlier run.
    pub players_present: u64,
    /// Not importable: their pid breaks Coffer's rules (listed in the log).
    pub players_refused: u64,
    /// Not imported: a different account with the same pid exists in Coffer (registered
    /// before the import). Listed in the log; their payment records are not imported either.
    pub players_conflicting: u64,
    pub records_imported: u64,
    pub records_present: u64,
    /// Records of conflicting players, left out.
    pub records_conflicting: u64,
    /// Records of players not imported (refused, or gone from the old `users`), left out: a
    /// later account with that pid must not see them as its own.
    pub records_orphaned: u64,
}

impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "players: {} imported, {} already present, {} refused, {} conflicting; payment \
             records: {} imported, {} already present, {} of conflicting and {} of unknown \
             players left out",
            self.players_imported,
            self.players_present,
            self.players_refused,
            self.players_conflicting,
            self.records_imported,
            self.records_present,
            self.records_conflicting,
            self.records_orphaned
        )
    }
}

/// Where to read from and how to read its times.
#[derive(Debug, Clone)]
pub struct ImportSource {
    /// `mysql://user:password@host:3306/game_db`.
    pub url: String,
    /// The time zone the old `pay_time` DATETIMEs were written in ("+08:00"); TIMESTAMP
    /// columns are converted by the server and need none.
    pub time_zone: String,
}

struct OldUser {
    id: i64,
    pid: String,
    name: String,
    password: String,
    level: i64,
    gold: i64,
    icon: String,
    created_ms: i64,
}

/// Imports into `game`, which must exist.
pub async fn run(
    store: &Store,
    players: &Players,
    game: &GameId,
    source: &ImportSource,
) -> Result<ImportReport, LegacyError> {
    crate::games::get(store, game.as_str())
        .await
        .map_err(|e| LegacyError::Invalid(format!("game {game}: {e}")))?;
    let offset_ok = {
        let b = source.time_zone.as_bytes();
        b.len() == 6
            && matches!(b[0], b'+' | b'-')
            && b[3] == b':'
            && [1, 2, 4, 5].iter().all(|&i| b[i].is_ascii_digit())
    };
    if !offset_ok {
        return Err(LegacyError::Invalid(
            "the time zone must be an offset like +08:00".into(),
        ));
    }
    let mut old = MySqlConnection::connect(&source.url)
        .await
        .map_err(|e| LegacyError::Internal(format!("cannot connect to the old database: {e}")))?;
    sqlx::query("SET time_zone = ?")
        .bind(source.time_zone.clone())
        .execute(&mut old)
        .await?;
    let mut report = ImportReport::default();
    let conflicting = import_users(store, players, game, &mut old, &mut report).await?;
    let owners = imported_pids(store, game).await?;
    import_records(store, &mut old, &owners, &conflicting, &mut report).await?;
    let _ = old.close().await;
    Ok(report)
}

async fn import_users(
    store: &Store,
    players: &Players,
    game: &GameId,
    old: &mut MySqlConnection,
    report: &mut ImportReport,
) -> Result<HashSet<String>, LegacyError> {
    reserve_old_ids(store, old).await?;
    let mut conflicting = HashSet::new();
    let rows = sqlx::query(
        "SELECT CAST(id AS SIGNED) AS id, pid, name, password, \
         CAST(COALESCE(level, 1) AS SIGNED) AS level, CAST(COALESCE(gold, 500) AS SIGNED) AS gold, \
         COALESCE(icon, '1') AS icon, \
         CAST(COALESCE(UNIX_TIMESTAMP(created_at), 0) AS SIGNED) AS created_s \
         FROM users ORDER BY id",
    )
    .fetch_all(&mut *old)
    .await?;
    let mut waiting = Vec::new();
    for row in rows {
        let user = OldUser {
            id: row.try_get("id")?,
            pid: row.try_get("pid")?,
            name: row.try_get("name")?,
            password: row.try_get("password")?,
            level: row.try_get("level")?,
            gold: row.try_get("gold")?,
            icon: row.try_get("icon")?,
            created_ms: row.try_get::<i64, _>("created_s")?.saturating_mul(1000),
        };
        if let Err(why) = validate_pid(&user.pid) {
            tracing::warn!(old_id = user.id, pid = %user.pid, %why, "player not imported");
            report.players_refused += 1;
        } else if imported_earlier(store, game, user.id).await? {
            report.players_present += 1;
        } else if player_by_pid(store, game, &user.pid).await?.is_some() {
            tracing::warn!(old_id = user.id, pid = %user.pid, "player not imported: another account has this pid");
            report.players_conflicting += 1;
            conflicting.insert(user.pid);
        } else {
            waiting.push(user);
        }
    }
    // Hashing is the slow part: one per core at a time (the hasher's own limit).
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut running = JoinSet::new();
    let mut waiting = waiting.into_iter();
    loop {
        while running.len() < parallel {
            let Some(user) = waiting.next() else { break };
            let (store, players, game) = (store.clone(), players.clone(), game.clone());
            running.spawn(async move {
                let pid = user.pid.clone();
                (pid, import_user(&store, &players, &game, user).await)
            });
        }
        match running.join_next().await {
            None => break,
            Some(joined) => {
                let (pid, imported) = joined.map_err(|e| LegacyError::Internal(e.to_string()))?;
                if imported? {
                    report.players_imported += 1;
                } else {
                    // Registered by someone else while the import ran.
                    tracing::warn!(%pid, "player not imported: another account has this pid");
                    report.players_conflicting += 1;
                    conflicting.insert(pid);
                }
            }
        }
    }
    Ok(conflicting)
}

/// The pids of `game`'s players that came from the old database (this run or an earlier one).
async fn imported_pids(store: &Store, game: &GameId) -> Result<HashSet<String>, LegacyError> {
    let pids: Vec<String> = sqlx::query_scalar(
        "SELECT p.username FROM player_directory p JOIN legacy_profiles lp ON lp.player_id = p.id \
         WHERE p.game_id = $1 AND lp.source_id IS NOT NULL",
    )
    .bind(game.as_str().to_owned())
    .fetch_all(store.pool())
    .await?;
    Ok(pids.into_iter().collect())
}

/// Whether the old player `old_id` was imported into `game` before.
async fn imported_earlier(store: &Store, game: &GameId, old_id: i64) -> Result<bool, LegacyError> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT lp.legacy_id FROM legacy_profiles lp JOIN player_directory p ON p.id = lp.player_id \
         WHERE p.game_id = $1 AND lp.source_id = $2",
    )
    .bind(game.as_str().to_owned())
    .bind(old_id)
    .fetch_optional(store.pool())
    .await?;
    Ok(found.is_some())
}

/// Moves PostgreSQL's id sequence past the old ids before any is written, so that players
/// registering during or after the import are never given one an old player keeps. SQLite's
/// AUTOINCREMENT follows the largest id written: there, a player registering during the import
/// may take an old id not yet written, and that old player is then given a new one (hence:
/// import before turning `[legacy]` on).
async fn reserve_old_ids(store: &Store, old: &mut MySqlConnection) -> Result<(), LegacyError> {
    if store.backend() != Backend::Postgres {
        return Ok(());
    }
    let old_max: i64 = sqlx::query_scalar("SELECT CAST(COALESCE(MAX(id), 0) AS SIGNED) FROM users")
        .fetch_one(&mut *old)
        .await?;
    store
        .write(old_max, |tx, old_max| {
            Box::pin(async move {
                sqlx::query(
                    "SELECT setval(pg_get_serial_sequence('legacy_profiles', 'legacy_id'), \
                     GREATEST((SELECT COALESCE(MAX(legacy_id), 0) FROM legacy_profiles), $1, 1))",
                )
                .bind(*old_max)
                .execute(&mut *tx)
                .await
            })
        })
        .await?;
    Ok(())
}

/// `false` when the pid was taken meanwhile.
async fn import_user(
    store: &Store,
    players: &Players,
    game: &GameId,
    user: OldUser,
) -> Result<bool, LegacyError> {
    // The old service stored passwords as typed: whatever the text, it is hashed (one that
    // looks like a hash was still typed by someone, and could name any cost).
    let hash = players.hash_password(user.password).await?;
    let name = if user.name.trim().is_empty() {
        user.pid.clone()
    } else {
        user.name
    };
    let imported = ImportedProfile {
        legacy_id: user.id,
        level: user.level,
        gold: user.gold,
        icon: user.icon,
    };
    let created = if user.created_ms > 0 {
        user.created_ms
    } else {
        now_ms()
    };
    Ok(insert_player(
        store,
        game,
        &user.pid,
        &name,
        &hash,
        Some(imported),
        created,
    )
    .await?
    .is_some())
}

async fn import_records(
    store: &Store,
    old: &mut MySqlConnection,
    owners: &HashSet<String>,
    conflicting: &HashSet<String>,
    report: &mut ImportReport,
) -> Result<(), LegacyError> {
    let rows = sqlx::query(
        "SELECT CAST(id AS SIGNED) AS id, user_id, user_name, CAST(amount AS CHAR) AS amount, \
         order_no, CAST(UNIX_TIMESTAMP(pay_time) AS SIGNED) AS pay_s, product_id, product_info, \
         CAST(product_details AS CHAR) AS product_details, \
         CAST(COALESCE(UNIX_TIMESTAMP(created_at), 0) AS SIGNED) AS created_s \
         FROM payment_records ORDER BY id",
    )
    .fetch_all(&mut *old)
    .await?;
    for row in rows {
        let user_id: String = row.try_get("user_id")?;
        if conflicting.contains(&user_id) {
            report.records_conflicting += 1;
            continue;
        }
        if !owners.contains(&user_id) {
            tracing::warn!(%user_id, "payment record not imported: its player was not");
            report.records_orphaned += 1;
            continue;
        }
        let pay_s: Option<i64> = row.try_get("pay_s")?;
        let created_s: i64 = row.try_get("created_s")?;
        let pay_ms = pay_s.unwrap_or(created_s).saturating_mul(1000);
        let imported = ImportedRecord {
            bill_no: row.try_get("order_no")?,
            legacy_record_id: row.try_get("id")?,
            user_id,
            user_name: row.try_get("user_name")?,
            amount: row.try_get("amount")?,
            pay_time: pay_ms,
            product_id: row.try_get("product_id")?,
            product_info: row.try_get("product_info")?,
            product_details: row.try_get("product_details")?,
            created_at: created_s.saturating_mul(1000),
        };
        let done = store
            .write(imported, |tx, r| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO legacy_payment_records (bill_no, legacy_record_id, user_id, \
                         user_name, amount, pay_time, product_id, product_info, product_details, \
                         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(r.bill_no.clone())
                    .bind(r.legacy_record_id)
                    .bind(r.user_id.clone())
                    .bind(r.user_name.clone())
                    .bind(r.amount.clone())
                    .bind(r.pay_time)
                    .bind(r.product_id.clone())
                    .bind(r.product_info.clone())
                    .bind(r.product_details.clone())
                    .bind(r.created_at)
                    .execute(&mut *tx)
                    .await
                })
            })
            .await?;
        if done.rows_affected() == 1 {
            report.records_imported += 1;
        } else {
            report.records_present += 1;
        }
    }
    Ok(())
}

/// A payment record of the old database, as the write job sees it.
struct ImportedRecord {
    bill_no: String,
    legacy_record_id: i64,
    user_id: String,
    user_name: String,
    amount: String,
    pay_time: i64,
    product_id: Option<String>,
    product_info: Option<String>,
    product_details: Option<String>,
    created_at: i64,
}
