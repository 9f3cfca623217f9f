//! The players area's tables: `players` and `player_sessions`.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{
    PasswordHasherConfig, Player, PlayerError, validate_display_name, validate_email,
    validate_password, validate_username,
};
use crate::games::{GameId, Games};
use crate::store::{Store, Tx, new_id, now_ms, random_token};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub game: GameId,
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub email: String,
}

/// Changes to a profile; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    pub display_name: Option<String>,
    pub email: Option<String>,
}

/// A new login session: the token is shown to the player once; only its digest is stored.
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub token: String,
    pub expires_at: i64,
    pub player: Player,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Page {
    /// 1-based.
    pub page: u32,
    /// 1 to 100.
    pub limit: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlayerList {
    pub players: Vec<Player>,
    pub page: u32,
    pub limit: u32,
    pub total: i64,
    pub pages: i64,
}

/// The players area, with what it needs to hash passwords and expire sessions.
#[derive(Clone)]
pub struct Players {
    store: Store,
    /// Whether a game is enabled is the games area's to say.
    games: Games,
    hasher: PasswordHasherConfig,
    session_ttl_ms: i64,
    /// Player id -> game, for orders' checks (immutable, so never stale).
    games_of_players: moka::sync::Cache<String, GameId>,
    /// Session token digest -> its player and expiry (see [`SESSION_CACHE_TTL`]).
    sessions: moka::sync::Cache<String, (Player, i64)>,
}

/// How many players' games are remembered.
const PLAYER_GAMES_CACHED: u64 = 200_000;

/// How long a session checked here is taken without asking the database again: a logout or a
/// disabled game through another instance applies here within it.
pub const SESSION_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// How many sessions are remembered at once.
const SESSIONS_CACHED: u64 = 100_000;

fn player_from_row(row: &AnyRow) -> Result<Player, sqlx::Error> {
    Ok(Player {
        id: row.try_get("id")?,
        game: GameId::parse(&row.try_get::<String, _>("game_id")?)
            .map_err(|e| sqlx::Error::Decode(e.into()))?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        email: row.try_get("email")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Inserts `player` with `password_hash` in the caller's transaction (a registration, or the
/// legacy area's player with its profile); `false` when the username is taken in its game.
pub(crate) async fn insert_in(
    tx: &mut Tx,
    player: &Player,
    password_hash: &str,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO players (id, game_id, username, password_hash, display_name, email, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
    )
    .bind(player.id.clone())
    .bind(player.game.as_str().to_owned())
    .bind(player.username.clone())
    .bind(password_hash.to_owned())
    .bind(player.display_name.clone())
    .bind(player.email.clone())
    .bind(player.created_at)
    .bind(player.updated_at)
    .execute(&mut *tx)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Players {
    pub fn new(
        store: Store,
        games: Games,
        hasher: PasswordHasherConfig,
        session_ttl_s: u64,
    ) -> Self {
        Self {
            store,
            games,
            hasher,
            session_ttl_ms: (session_ttl_s as i64).saturating_mul(1000),
            games_of_players: moka::sync::Cache::new(PLAYER_GAMES_CACHED),
            sessions: moka::sync::Cache::builder()
                .max_capacity(SESSIONS_CACHED)
                .time_to_live(SESSION_CACHE_TTL)
                .build(),
        }
    }

    pub async fn register(&self, registration: Registration) -> Result<Player, PlayerError> {
        let Registration {
            game,
            username,
            password,
            display_name,
            email,
        } = registration;
        validate_username(&username)?;
        validate_password(&password)?;
        let display_name = display_name.unwrap_or_else(|| username.clone());
        validate_display_name(&display_name)?;
        validate_email(&email)?;
        self.require_enabled_game(&game).await?;
        // Checked before the costly hash; the unique index still decides under a race.
        let taken: Option<String> =
            sqlx::query_scalar("SELECT id FROM players WHERE game_id = $1 AND username = $2")
                .bind(game.as_str().to_owned())
                .bind(username.clone())
                .fetch_optional(self.store.pool())
                .await?;
        if taken.is_some() {
            return Err(PlayerError::UsernameTaken(username));
        }
        let password_hash = self.hasher.hash(password).await?;
        let now = now_ms();
        let player = Player {
            id: new_id("pl_"),
            game,
            username,
            display_name,
            email,
            created_at: now,
            updated_at: now,
        };
        let inserted = self
            .store
            .write((player.clone(), password_hash), |tx, (player, hash)| {
                Box::pin(insert_in(tx, player, hash))
            })
            .await?;
        if !inserted {
            return Err(PlayerError::UsernameTaken(player.username));
        }
        Ok(player)
    }

    /// The game player `id` belongs to (a player never changes game, so it is remembered).
    pub async fn game_of(&self, id: &str) -> Result<Option<GameId>, PlayerError> {
        if let Some(game) = self.games_of_players.get(id) {
            return Ok(Some(game));
        }
        let game: Option<String> = sqlx::query_scalar("SELECT game_id FROM players WHERE id = $1")
            .bind(id.to_owned())
            .fetch_optional(self.store.pool())
            .await?;
        let game = game
            .map(|g| GameId::parse(&g).map_err(|e| sqlx::Error::Decode(e.into())))
            .transpose()?;
        if let Some(game) = &game {
            self.games_of_players.insert(id.to_owned(), game.clone());
        }
        Ok(game)
    }

    /// An Argon2id hash of `password` under the configured limits, for areas that insert
    /// players with their own rules (the legacy API and its import).
    pub async fn hash_password(&self, password: String) -> Result<String, PlayerError> {
        Ok(self.hasher.hash(password).await?)
    }

    /// The store the players live in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) async fn require_enabled_game(&self, game: &GameId) -> Result<(), PlayerError> {
        if self.games.is_enabled(game).await? {
            Ok(())
        } else {
            Err(PlayerError::UnknownGame)
        }
    }

    /// Checks the password and opens a session. Unknown names and wrong passwords get the
    /// same answer after the same work.
    pub async fn login(
        &self,
        game: &GameId,
        username: &str,
        password: String,
    ) -> Result<Session, PlayerError> {
        if password.chars().count() > *super::PASSWORD_CHARS.end() {
            return Err(PlayerError::WrongCredentials);
        }
        let row = sqlx::query("SELECT * FROM players WHERE game_id = $1 AND username = $2")
            .bind(game.as_str().to_owned())
            .bind(username.to_owned())
            .fetch_optional(self.store.pool())
            .await?;
        let hash = row
            .as_ref()
            .map(|r| r.try_get::<String, _>("password_hash"))
            .transpose()?;
        if !self.hasher.verify(password, hash).await? {
            return Err(PlayerError::WrongCredentials);
        }
        let row = row.expect("a verified password has an account");
        let player = player_from_row(&row)?;
        self.require_enabled_game(&player.game).await?;
        let token = random_token("cps_");
        let now = now_ms();
        let expires_at = now.saturating_add(self.session_ttl_ms);
        let session = (token_digest(&token), player.id.clone(), now, expires_at);
        self.store
            .write(session, |tx, (digest, player, now, expires_at)| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO player_sessions (token_sha256, player_id, created_at, \
                         expires_at) VALUES ($1, $2, $3, $4)",
                    )
                    .bind(digest.clone())
                    .bind(player.clone())
                    .bind(*now)
                    .bind(*expires_at)
                    .execute(&mut *tx)
                    .await
                })
            })
            .await?;
        Ok(Session {
            token,
            expires_at,
            player,
        })
    }

    /// The player a session token belongs to, if the session is still valid. A session ended
    /// through another instance (or its game disabled there) may still be taken for up to
    /// [`SESSION_CACHE_TTL`]; through this one it ends at once.
    pub async fn authenticate(&self, token: &str) -> Result<Player, PlayerError> {
        let digest = token_digest(token);
        let now = now_ms();
        if let Some((player, expires_at)) = self.sessions.get(&digest) {
            return if expires_at > now {
                Ok(player)
            } else {
                Err(PlayerError::BadSession)
            };
        }
        let row = sqlx::query(
            "SELECT p.*, s.expires_at AS session_expires_at FROM player_sessions s \
             JOIN players p ON p.id = s.player_id \
             WHERE s.token_sha256 = $1 AND s.expires_at > $2",
        )
        .bind(digest.clone())
        .bind(now)
        .fetch_optional(self.store.pool())
        .await?
        .ok_or(PlayerError::BadSession)?;
        let player = player_from_row(&row)?;
        if !self.games.is_enabled(&player.game).await? {
            return Err(PlayerError::BadSession);
        }
        let expires_at: i64 = row.try_get("session_expires_at")?;
        self.sessions.insert(digest, (player.clone(), expires_at));
        Ok(player)
    }

    /// Ends a session. Ending one that does not exist is not an error.
    pub async fn logout(&self, token: &str) -> Result<(), PlayerError> {
        let digest = token_digest(token);
        self.sessions.invalidate(&digest);
        let digest = self
            .store
            .write(digest, |tx, digest| {
                Box::pin(async move {
                    sqlx::query("DELETE FROM player_sessions WHERE token_sha256 = $1")
                        .bind(digest.clone())
                        .execute(&mut *tx)
                        .await?;
                    Ok::<_, sqlx::Error>(digest.clone())
                })
            })
            .await?;
        // Again: a request checking the session while the delete waited may have cached it.
        self.sessions.invalidate(&digest);
        Ok(())
    }

    /// Forgets expired sessions; returns how many.
    pub async fn purge_expired_sessions(&self) -> Result<u64, PlayerError> {
        let done = self
            .store
            .write(now_ms(), |tx, now| {
                Box::pin(async move {
                    sqlx::query("DELETE FROM player_sessions WHERE expires_at <= $1")
                        .bind(*now)
                        .execute(&mut *tx)
                        .await
                })
            })
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn get(&self, id: &str) -> Result<Player, PlayerError> {
        let row = sqlx::query("SELECT * FROM players WHERE id = $1")
            .bind(id.to_owned())
            .fetch_optional(self.store.pool())
            .await?
            .ok_or(PlayerError::NotFound)?;
        Ok(player_from_row(&row)?)
    }

    /// A player of `game`, or NotFound (also when the player belongs to another game).
    pub async fn get_in_game(&self, game: &GameId, id: &str) -> Result<Player, PlayerError> {
        let player = self.get(id).await?;
        if &player.game == game {
            Ok(player)
        } else {
            Err(PlayerError::NotFound)
        }
    }

    pub async fn update_profile(
        &self,
        id: &str,
        patch: ProfilePatch,
    ) -> Result<Player, PlayerError> {
        if let Some(name) = &patch.display_name {
            validate_display_name(name)?;
        }
        if let Some(email) = &patch.email {
            validate_email(email)?;
        }
        let mut player = self.get(id).await?;
        if let Some(name) = patch.display_name {
            player.display_name = name;
        }
        if let Some(email) = patch.email {
            player.email = email;
        }
        player.updated_at = now_ms();
        self.store
            .write(player.clone(), |tx, player| {
                Box::pin(async move {
                    sqlx::query(
                        "UPDATE players SET display_name = $1, email = $2, updated_at = $3 \
                         WHERE id = $4",
                    )
                    .bind(player.display_name.clone())
                    .bind(player.email.clone())
                    .bind(player.updated_at)
                    .bind(player.id.clone())
                    .execute(&mut *tx)
                    .await
                })
            })
            .await?;
        // The cached sessions carry the player as it was.
        self.forget_sessions();
        Ok(player)
    }

    /// Forgets the sessions this instance remembers, so that the next request of each reads
    /// its session, its player and its game's state again (after an admin changed a game).
    pub fn forget_sessions(&self) {
        self.sessions.invalidate_all();
    }

    /// Players, newest first, optionally of one game and matching `search` in the username
    /// or display name (case-insensitive).
    pub async fn list(
        &self,
        game: Option<&GameId>,
        search: Option<&str>,
        page: Page,
    ) -> Result<PlayerList, PlayerError> {
        if page.page == 0 || !(1..=100).contains(&page.limit) {
            return Err(PlayerError::Invalid(
                "page starts at 1; limit is 1 to 100".into(),
            ));
        }
        let pattern = match search.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) if s.chars().count() > 64 => {
                return Err(PlayerError::Invalid(
                    "search is at most 64 characters".into(),
                ));
            }
            Some(s) => format!("%{}%", escape_like(&s.to_lowercase())),
            None => "%".to_owned(),
        };
        let game = game.map(|g| g.as_str().to_owned());
        const FILTER: &str = "($1 IS NULL OR game_id = $1) AND (LOWER(username) LIKE $2 ESCAPE '\\' \
             OR LOWER(display_name) LIKE $2 ESCAPE '\\')";
        let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM players WHERE {FILTER}"
        )))
        .bind(game.clone())
        .bind(pattern.clone())
        .fetch_one(self.store.pool())
        .await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT * FROM players WHERE {FILTER} ORDER BY created_at DESC, id DESC \
             LIMIT $3 OFFSET $4"
        )))
        .bind(game)
        .bind(pattern)
        .bind(i64::from(page.limit))
        .bind(i64::from(page.page - 1) * i64::from(page.limit))
        .fetch_all(self.store.pool())
        .await?;
        let players = rows.iter().map(player_from_row).collect::<Result<_, _>>()?;
        let limit = i64::from(page.limit);
        Ok(PlayerList {
            players,
            page: page.page,
            limit: page.limit,
            total,
            pages: (total + limit - 1) / limit,
        })
    }
}

/// Escapes LIKE's wildcards so a search for "50%" looks for a percent sign.
pub(crate) fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
