//! What every request asks about its game, remembered briefly: a signed request looks up its
//! API key, a legacy payment its game. Changes made through this instance show at once (the
//! admin routes forget everything they may have changed); changes made through another
//! instance show within [`GAME_CACHE_TTL`].

use std::time::Duration;

use super::{Game, GameError, GameId, GameKey};
use crate::store::Store;

/// How long another instance's change to a game or its keys (a disabled game, a revoked key)
/// may take to show here.
pub const GAME_CACHE_TTL: Duration = Duration::from_secs(1);

/// Keys and games, remembered for [`GAME_CACHE_TTL`]. Cheap to clone.
#[derive(Clone)]
pub struct Games {
    store: Store,
    keys: moka::sync::Cache<String, Option<GameKey>>,
    games: moka::sync::Cache<GameId, Game>,
}

impl Games {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            keys: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(GAME_CACHE_TTL)
                .build(),
            games: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(GAME_CACHE_TTL)
                .build(),
        }
    }

    /// The key `key_id` (or `None`: unknown or expired).
    pub async fn key(&self, key_id: &str) -> Result<Option<GameKey>, sqlx::Error> {
        if let Some(key) = self.keys.get(key_id) {
            return Ok(key.filter(|k| k.valid_now()));
        }
        let key = super::find_key(&self.store, key_id).await?;
        self.keys.insert(key_id.to_owned(), key.clone());
        Ok(key)
    }

    /// The game `id`.
    pub async fn game(&self, id: &GameId) -> Result<Game, GameError> {
        if let Some(game) = self.games.get(id) {
            return Ok(game);
        }
        let game = super::get(&self.store, id.as_str()).await?;
        self.games.insert(id.clone(), game.clone());
        Ok(game)
    }

    /// Whether the game `id` exists and is enabled.
    pub async fn is_enabled(&self, id: &GameId) -> Result<bool, sqlx::Error> {
        if let Some(game) = self.games.get(id) {
            return Ok(game.enabled);
        }
        let Some(game) = super::find(&self.store, id.as_str()).await? else {
            return Ok(false);
        };
        let enabled = game.enabled;
        self.games.insert(id.clone(), game);
        Ok(enabled)
    }

    /// Forgets everything, after a change to games or keys through this instance.
    pub fn forget(&self) {
        self.keys.invalidate_all();
        self.games.invalidate_all();
    }
}
