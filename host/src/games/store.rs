//! The games area's tables: `games` and `game_api_keys`.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Game, GameError, GameId, Region, validate_delivery_url};
use crate::store::{Store, Tx, now_ms, random_token};

/// What an operator gives to create a game.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewGame {
    pub id: GameId,
    pub name: String,
    pub default_region: Region,
    pub delivery_url: String,
}

/// Changes to a game; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GamePatch {
    pub name: Option<String>,
    pub default_region: Option<Region>,
    pub delivery_url: Option<String>,
    pub enabled: Option<bool>,
}

/// A game-server API key. The secret is shown once, when the key is made.
#[derive(Debug, Clone, Serialize)]
pub struct ApiKey {
    pub key_id: String,
    pub secret: String,
}

/// What request authentication needs to know about a key.
#[derive(Debug, Clone)]
pub struct GameKey {
    pub game_id: GameId,
    pub default_region: Region,
    pub secret: String,
    pub game_enabled: bool,
    /// Unix milliseconds after which the key no longer signs anything (rotated out).
    pub expires_at: Option<i64>,
}

impl GameKey {
    /// Whether the key is still valid now.
    pub fn valid_now(&self) -> bool {
        self.expires_at.is_none_or(|at| at > now_ms())
    }
}

fn validate_name(name: &str) -> Result<(), GameError> {
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(GameError::Invalid("name must be 1-100 characters".into()));
    }
    Ok(())
}

fn game_from_row(row: &AnyRow) -> Result<Game, sqlx::Error> {
    let invalid = |e: String| sqlx::Error::Decode(e.into());
    Ok(Game {
        id: GameId::parse(&row.try_get::<String, _>("id")?).map_err(invalid)?,
        name: row.try_get("name")?,
        default_region: Region::parse(&row.try_get::<String, _>("default_region")?)
            .map_err(invalid)?,
        delivery_url: row.try_get("delivery_url")?,
        enabled: crate::store::flag(row, "enabled")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Creates a game with its first API key and its delivery secret, both returned once.
pub async fn create(store: &Store, new: NewGame) -> Result<(Game, ApiKey, String), GameError> {
    validate_name(&new.name)?;
    validate_delivery_url(&new.delivery_url).map_err(GameError::Invalid)?;
    let now = now_ms();
    let delivery_secret = random_token("cds_");
    let key = ApiKey {
        key_id: crate::store::new_id("ck_"),
        secret: random_token("cs_"),
    };
    let created = NewRows {
        new: new.clone(),
        key: key.clone(),
        delivery_secret: delivery_secret.clone(),
        now,
    };
    store
        .write(created, |tx, created| Box::pin(insert_game(tx, created)))
        .await?;
    let game = Game {
        id: new.id,
        name: new.name.trim().to_owned(),
        default_region: new.default_region,
        delivery_url: new.delivery_url,
        enabled: true,
        created_at: now,
        updated_at: now,
    };
    Ok((game, key, delivery_secret))
}

/// What a new game writes.
struct NewRows {
    new: NewGame,
    key: ApiKey,
    delivery_secret: String,
    now: i64,
}

async fn insert_game(tx: &mut Tx, rows: &NewRows) -> Result<(), GameError> {
    let new = &rows.new;
    let inserted = sqlx::query(
        "INSERT INTO games (id, name, default_region, delivery_url, delivery_secret, enabled, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT DO NOTHING",
    )
    .bind(new.id.as_str().to_owned())
    .bind(new.name.trim().to_owned())
    .bind(new.default_region.as_str().to_owned())
    .bind(new.delivery_url.clone())
    .bind(rows.delivery_secret.clone())
    .bind(true)
    .bind(rows.now)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(GameError::Exists(new.id.clone()));
    }
    insert_key(tx, &new.id, &rows.key, rows.now).await?;
    Ok(())
}

async fn insert_key(tx: &mut Tx, game: &GameId, key: &ApiKey, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO game_api_keys (key_id, game_id, secret, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, NULL)",
    )
    .bind(key.key_id.clone())
    .bind(game.as_str().to_owned())
    .bind(key.secret.clone())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub async fn get(store: &Store, id: &str) -> Result<Game, GameError> {
    find(store, id)
        .await?
        .ok_or_else(|| GameError::NotFound(id.to_owned()))
}

/// The game `id`, if there is one.
pub async fn find(store: &Store, id: &str) -> Result<Option<Game>, sqlx::Error> {
    let row = sqlx::query("SELECT * FROM games WHERE id = $1")
        .bind(id.to_owned())
        .fetch_optional(store.pool())
        .await?;
    row.as_ref().map(game_from_row).transpose()
}

pub async fn list(store: &Store) -> Result<Vec<Game>, GameError> {
    let rows = sqlx::query("SELECT * FROM games ORDER BY id")
        .fetch_all(store.pool())
        .await?;
    Ok(rows.iter().map(game_from_row).collect::<Result<_, _>>()?)
}

pub async fn update(store: &Store, id: &str, patch: GamePatch) -> Result<Game, GameError> {
    if let Some(name) = &patch.name {
        validate_name(name)?;
    }
    if let Some(url) = &patch.delivery_url {
        validate_delivery_url(url).map_err(GameError::Invalid)?;
    }
    store
        .write((id.to_owned(), patch), |tx, (id, patch)| {
            Box::pin(update_game(tx, id, patch))
        })
        .await
}

async fn update_game(tx: &mut Tx, id: &str, patch: &GamePatch) -> Result<Game, GameError> {
    let row = sqlx::query("SELECT * FROM games WHERE id = $1")
        .bind(id.to_owned())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| GameError::NotFound(id.to_owned()))?;
    let mut game = game_from_row(&row)?;
    if let Some(name) = &patch.name {
        game.name = name.trim().to_owned();
    }
    if let Some(region) = &patch.default_region {
        game.default_region = region.clone();
    }
    if let Some(url) = &patch.delivery_url {
        game.delivery_url = url.clone();
    }
    if let Some(enabled) = patch.enabled {
        game.enabled = enabled;
    }
    game.updated_at = now_ms();
    sqlx::query(
        "UPDATE games SET name = $1, default_region = $2, delivery_url = $3, enabled = $4, \
         updated_at = $5 WHERE id = $6",
    )
    .bind(game.name.clone())
    .bind(game.default_region.as_str().to_owned())
    .bind(game.delivery_url.clone())
    .bind(game.enabled)
    .bind(game.updated_at)
    .bind(id.to_owned())
    .execute(&mut *tx)
    .await?;
    Ok(game)
}

/// Makes a new API key. The game's current keys keep working for `grace_s` more seconds, so
/// its servers can switch without downtime; 0 revokes them at once.
pub async fn rotate_api_key(store: &Store, id: &str, grace_s: u64) -> Result<ApiKey, GameError> {
    let game = get(store, id).await?;
    let now = now_ms();
    let key = ApiKey {
        key_id: crate::store::new_id("ck_"),
        secret: random_token("cs_"),
    };
    let expires = now.saturating_add((grace_s as i64).saturating_mul(1000));
    let rotation = (game.id, key.clone(), expires, now);
    store
        .write(rotation, |tx, (game, key, expires, now)| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE game_api_keys SET expires_at = $1 \
                     WHERE game_id = $2 AND (expires_at IS NULL OR expires_at > $1)",
                )
                .bind(*expires)
                .bind(game.as_str().to_owned())
                .execute(&mut *tx)
                .await?;
                insert_key(tx, game, key, *now).await
            })
        })
        .await?;
    Ok(key)
}

/// Replaces the secret deliveries are signed with, returning the new one once.
pub async fn rotate_delivery_secret(store: &Store, id: &str) -> Result<String, GameError> {
    let secret = random_token("cds_");
    let change = (secret.clone(), id.to_owned(), now_ms());
    let done = store
        .write(change, |tx, (secret, id, now)| {
            Box::pin(async move {
                sqlx::query("UPDATE games SET delivery_secret = $1, updated_at = $2 WHERE id = $3")
                    .bind(secret.clone())
                    .bind(*now)
                    .bind(id.clone())
                    .execute(&mut *tx)
                    .await
            })
        })
        .await?;
    if done.rows_affected() == 0 {
        return Err(GameError::NotFound(id.to_owned()));
    }
    Ok(secret)
}

/// Where a game's events go, and the secret they are signed with.
#[derive(Debug, Clone)]
pub struct DeliveryTarget {
    pub url: String,
    pub secret: String,
}

/// The delivery target of `game`; `None` if there is no such game.
pub async fn delivery_target(
    store: &Store,
    game: &GameId,
) -> Result<Option<DeliveryTarget>, sqlx::Error> {
    let row = sqlx::query("SELECT delivery_url, delivery_secret FROM games WHERE id = $1")
        .bind(game.as_str().to_owned())
        .fetch_optional(store.pool())
        .await?;
    row.map(|row| {
        Ok(DeliveryTarget {
            url: row.try_get("delivery_url")?,
            secret: row.try_get("delivery_secret")?,
        })
    })
    .transpose()
}

/// A key that is still valid, with its game.
pub async fn find_key(store: &Store, key_id: &str) -> Result<Option<GameKey>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT k.game_id, k.secret, k.expires_at, g.enabled, g.default_region FROM game_api_keys k \
         JOIN games g ON g.id = k.game_id \
         WHERE k.key_id = $1 AND (k.expires_at IS NULL OR k.expires_at > $2)",
    )
    .bind(key_id.to_owned())
    .bind(now_ms())
    .fetch_optional(store.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(GameKey {
        game_id: GameId::parse(&row.try_get::<String, _>("game_id")?)
            .map_err(|e| sqlx::Error::Decode(e.into()))?,
        default_region: Region::parse(&row.try_get::<String, _>("default_region")?)
            .map_err(|e| sqlx::Error::Decode(e.into()))?,
        secret: row.try_get("secret")?,
        game_enabled: crate::store::flag(&row, "enabled")?,
        expires_at: row.try_get("expires_at")?,
    }))
}
