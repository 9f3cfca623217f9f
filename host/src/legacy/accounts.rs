//! Legacy players: a Coffer player of the legacy game (username = the old `pid`, display
//! name = the old `name`) with the old numeric id, level, gold and icon beside it.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{GUEST_USERNAME, Legacy, LegacyError};
use crate::games::GameId;
use crate::players::{Player, Session, escape_like};
use crate::store::{Store, Tx, new_id, now_ms};

/// What a new legacy player starts with, as in the old system.
pub const START_LEVEL: i64 = 1;
pub const START_GOLD: i64 = 500;
pub const START_ICON: &str = "1";

#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub id: i64,
    pub pid: String,
    pub name: String,
    pub level: i64,
    pub gold: i64,
    pub icon: String,
    /// Unix milliseconds.
    pub created_at: i64,
    #[serde(skip)]
    pub player_id: String,
}

/// `POST /api/auth/register`.
#[derive(Debug, Clone)]
pub struct NewProfile {
    pub pid: String,
    pub name: String,
    pub password: String,
}

/// `PUT /api/users/:pid`: absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct ProfileChange {
    pub level: Option<i64>,
    pub gold: Option<i64>,
    pub icon: Option<String>,
}

impl ProfileChange {
    pub fn is_empty(&self) -> bool {
        self.level.is_none() && self.gold.is_none() && self.icon.is_none()
    }

    /// Level and gold are game state: only the game server or an operator may set them.
    pub fn touches_game_state(&self) -> bool {
        self.level.is_some() || self.gold.is_some()
    }
}

#[derive(Debug, Clone)]
pub struct ProfileList {
    pub users: Vec<Profile>,
    pub total: i64,
}

const PROFILE_COLUMNS: &str = "lp.legacy_id, lp.level, lp.gold, lp.icon, p.id AS player_id, \
     p.username, p.display_name, p.created_at";

fn profile_from_row(row: &AnyRow) -> Result<Profile, sqlx::Error> {
    Ok(Profile {
        id: row.try_get("legacy_id")?,
        pid: row.try_get("username")?,
        name: row.try_get("display_name")?,
        level: row.try_get("level")?,
        gold: row.try_get("gold")?,
        icon: row.try_get("icon")?,
        created_at: row.try_get("created_at")?,
        player_id: row.try_get("player_id")?,
    })
}

/// The old `pid`: 1 to 50 characters, no spaces or control characters, not starting with
/// '#' (kept for Coffer's own players, see [`GUEST_USERNAME`]).
pub fn validate_pid(pid: &str) -> Result<(), LegacyError> {
    let ok = (1..=50).contains(&pid.chars().count())
        && !pid.starts_with('#')
        && !pid.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(LegacyError::Invalid(
            "玩家ID须为1到50个字符，不能包含空格，不能以#开头".into(),
        ))
    }
}

fn validate_name(name: &str) -> Result<(), LegacyError> {
    if (1..=100).contains(&name.chars().count()) && !name.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(LegacyError::Invalid("名称须为1到100个字符".into()))
    }
}

fn validate_icon(icon: &str) -> Result<(), LegacyError> {
    if (1..=100).contains(&icon.chars().count()) && !icon.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(LegacyError::Invalid("头像须为1到100个字符".into()))
    }
}

impl Legacy {
    pub async fn register(&self, new: NewProfile) -> Result<Profile, LegacyError> {
        if new.pid.is_empty() || new.name.is_empty() || new.password.is_empty() {
            return Err(LegacyError::Incomplete);
        }
        validate_pid(&new.pid)?;
        validate_name(&new.name)?;
        let chars = new.password.chars().count();
        let min = self.config.min_password_chars;
        if !(min..=*crate::players::PASSWORD_CHARS.end()).contains(&chars) {
            return Err(LegacyError::Invalid(format!(
                "密码须为{min}到{}个字符",
                crate::players::PASSWORD_CHARS.end()
            )));
        }
        self.players.require_enabled_game(&self.game).await?;
        // Checked before the costly hash; the unique index still decides under a race.
        if self.player_by_pid(&new.pid).await?.is_some() {
            return Err(LegacyError::PidTaken);
        }
        let hash = self.players.hash_password(new.password).await?;
        insert_player(
            &self.store,
            &self.game,
            &new.pid,
            &new.name,
            &hash,
            None,
            now_ms(),
        )
        .await?
        .ok_or(LegacyError::PidTaken)
    }

    /// Checks the password (Argon2id, same time for unknown ids) and opens a session.
    pub async fn login(
        &self,
        pid: &str,
        password: &str,
    ) -> Result<(Profile, Session), LegacyError> {
        if pid.is_empty() || password.is_empty() {
            return Err(LegacyError::Incomplete);
        }
        if pid.starts_with('#') {
            return Err(LegacyError::WrongCredentials);
        }
        let session = self
            .players
            .login(&self.game, pid, password.to_owned())
            .await?;
        let profile = self.profile(pid).await?;
        Ok((profile, session))
    }

    /// The player a session token belongs to, if it is a valid session of the legacy game.
    pub async fn session_player(&self, token: &str) -> Option<Player> {
        let player = self.players.authenticate(token).await.ok()?;
        (player.game == self.game).then_some(player)
    }

    async fn player_by_pid(&self, pid: &str) -> Result<Option<String>, LegacyError> {
        player_by_pid(&self.store, &self.game, pid).await
    }

    /// A player's profile. Players of the game registered through `/v1` get one with the
    /// starting values the first time they are seen here.
    pub async fn profile(&self, pid: &str) -> Result<Profile, LegacyError> {
        if pid.starts_with('#') {
            return Err(LegacyError::UnknownPlayer);
        }
        let select = || {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {PROFILE_COLUMNS} FROM player_directory p \
                 JOIN legacy_profiles lp ON lp.player_id = p.id \
                 WHERE p.game_id = $1 AND p.username = $2"
            )))
            .bind(self.game.as_str().to_owned())
            .bind(pid.to_owned())
        };
        if let Some(row) = select().fetch_optional(self.store.pool()).await? {
            return Ok(profile_from_row(&row)?);
        }
        let player_id = self
            .player_by_pid(pid)
            .await?
            .ok_or(LegacyError::UnknownPlayer)?;
        self.store
            .write(player_id, |tx, player_id| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO legacy_profiles (player_id, level, gold, icon, updated_at) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (player_id) DO NOTHING",
                    )
                    .bind(player_id.clone())
                    .bind(START_LEVEL)
                    .bind(START_GOLD)
                    .bind(START_ICON.to_owned())
                    .bind(now_ms())
                    .execute(&mut *tx)
                    .await
                })
            })
            .await?;
        let row = select().fetch_one(self.store.pool()).await?;
        Ok(profile_from_row(&row)?)
    }

    /// Applies a change. Who may make it is the caller's concern (see
    /// [`ProfileChange::touches_game_state`]).
    pub async fn update_profile(
        &self,
        pid: &str,
        change: ProfileChange,
    ) -> Result<Profile, LegacyError> {
        if change.is_empty() {
            return Err(LegacyError::Invalid("没有需要更新的数据".into()));
        }
        if change
            .level
            .is_some_and(|l| !(0..=i64::from(i32::MAX)).contains(&l))
            || change
                .gold
                .is_some_and(|g| !(0..=i64::from(i32::MAX)).contains(&g))
        {
            return Err(LegacyError::Invalid("等级和金币须为非负整数".into()));
        }
        if let Some(icon) = &change.icon {
            validate_icon(icon)?;
        }
        let profile = self.profile(pid).await?;
        self.store
            .write(
                (change, profile.player_id.clone()),
                |tx, (change, player_id)| {
                    Box::pin(async move {
                        sqlx::query(
                            "UPDATE legacy_profiles SET level = COALESCE($1, level), \
                         gold = COALESCE($2, gold), icon = COALESCE($3, icon), updated_at = $4 \
                         WHERE player_id = $5",
                        )
                        .bind(change.level)
                        .bind(change.gold)
                        .bind(change.icon.clone())
                        .bind(now_ms())
                        .bind(player_id.clone())
                        .execute(&mut *tx)
                        .await
                    })
                },
            )
            .await?;
        self.profile(pid).await
    }

    /// Legacy players, newest first, optionally matching `search` in the pid or the name.
    pub async fn list_profiles(
        &self,
        page: u32,
        limit: u32,
        search: &str,
    ) -> Result<ProfileList, LegacyError> {
        if page == 0 || !(1..=100).contains(&limit) {
            return Err(LegacyError::Invalid("page从1开始，limit为1到100".into()));
        }
        let search = search.trim();
        if search.chars().count() > 64 {
            return Err(LegacyError::Invalid("search最多64个字符".into()));
        }
        let pattern = format!("%{}%", escape_like(&search.to_lowercase()));
        const FILTER: &str = "p.game_id = $1 AND p.username <> $2 AND \
             (LOWER(p.username) LIKE $3 ESCAPE '\\' OR LOWER(p.display_name) LIKE $3 ESCAPE '\\')";
        let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM player_directory p JOIN legacy_profiles lp ON lp.player_id = p.id \
             WHERE {FILTER}"
        )))
        .bind(self.game.as_str().to_owned())
        .bind(GUEST_USERNAME)
        .bind(pattern.clone())
        .fetch_one(self.store.pool())
        .await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PROFILE_COLUMNS} FROM player_directory p JOIN legacy_profiles lp \
             ON lp.player_id = p.id WHERE {FILTER} \
             ORDER BY p.created_at DESC, lp.legacy_id DESC LIMIT $4 OFFSET $5"
        )))
        .bind(self.game.as_str().to_owned())
        .bind(GUEST_USERNAME)
        .bind(pattern)
        .bind(i64::from(limit))
        .bind(i64::from(page - 1) * i64::from(limit))
        .fetch_all(self.store.pool())
        .await?;
        let users = rows
            .iter()
            .map(profile_from_row)
            .collect::<Result<_, _>>()?;
        Ok(ProfileList { users, total })
    }

    /// The player anonymous `/api/pay` orders belong to, made on first use. Nobody can log in
    /// as it: its password hash is of a random secret that is thrown away.
    pub(super) async fn guest_player(&self) -> Result<String, LegacyError> {
        if let Some(id) = self.player_by_pid(GUEST_USERNAME).await? {
            return Ok(id);
        }
        let hash = self
            .players
            .hash_password(crate::store::random_token(""))
            .await?;
        insert_player(
            &self.store,
            &self.game,
            GUEST_USERNAME,
            "legacy guest",
            &hash,
            None,
            now_ms(),
        )
        .await?;
        self.player_by_pid(GUEST_USERNAME)
            .await?
            .ok_or_else(|| LegacyError::Internal("cannot make the guest player".into()))
    }
}

/// Inserts a player and their profile in one transaction. `None` when the pid is taken. An
/// imported player keeps their old id as `legacy_id` when it is free, and always as
/// `source_id`.
pub(super) async fn insert_player(
    store: &Store,
    game: &GameId,
    pid: &str,
    name: &str,
    password_hash: &str,
    imported: Option<ImportedProfile>,
    created_at: i64,
) -> Result<Option<Profile>, LegacyError> {
    let new = NewLegacyPlayer {
        game: game.clone(),
        player_id: new_id("pl_"),
        pid: pid.to_owned(),
        name: name.to_owned(),
        password_hash: password_hash.to_owned(),
        imported,
        created_at,
        now: now_ms(),
    };
    let Some((legacy_id, level, gold, icon)) = store
        .write(new.clone(), |tx, new| Box::pin(insert_player_in(tx, new)))
        .await?
    else {
        return Ok(None);
    };
    let player_id = new.player_id;
    Ok(Some(Profile {
        id: legacy_id,
        pid: pid.to_owned(),
        name: name.to_owned(),
        level,
        gold,
        icon,
        created_at,
        player_id,
    }))
}

/// What inserting a legacy player writes.
#[derive(Clone)]
struct NewLegacyPlayer {
    game: GameId,
    player_id: String,
    pid: String,
    name: String,
    password_hash: String,
    imported: Option<ImportedProfile>,
    created_at: i64,
    now: i64,
}

/// Inserts the player and their profile; `None` when the pid is taken. Returns the profile's
/// id, level, gold and icon.
async fn insert_player_in(
    tx: &mut Tx,
    new: &NewLegacyPlayer,
) -> Result<Option<(i64, i64, i64, String)>, LegacyError> {
    let player = Player {
        id: new.player_id.clone(),
        game: new.game.clone(),
        username: new.pid.clone(),
        display_name: new.name.clone(),
        email: String::new(),
        created_at: new.created_at,
        updated_at: new.now,
    };
    if !crate::players::insert_in(tx, &player, &new.password_hash).await? {
        return Ok(None);
    }
    let imported = &new.imported;
    let (level, gold, icon) = imported
        .as_ref()
        .map_or((START_LEVEL, START_GOLD, START_ICON.to_owned()), |i| {
            (i.level, i.gold, i.icon.clone())
        });
    // An imported player keeps the old id unless a Coffer registration took it already.
    let wanted_id = match imported.as_ref().map(|i| i.legacy_id) {
        Some(id) => {
            let taken: Option<String> =
                sqlx::query_scalar("SELECT player_id FROM legacy_profiles WHERE legacy_id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            taken.is_none().then_some(id)
        }
        None => None,
    };
    // Written with the explicit id when it is kept, from the sequence otherwise.
    let (id_column, id_value) = match wanted_id {
        Some(_) => ("legacy_id, ", "$7, "),
        None => ("", ""),
    };
    let insert = format!(
        "INSERT INTO legacy_profiles ({id_column}player_id, source_id, level, gold, icon, \
         updated_at) VALUES ({id_value}$1, $2, $3, $4, $5, $6) RETURNING legacy_id"
    );
    let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(insert))
        .bind(new.player_id.clone())
        .bind(imported.as_ref().map(|i| i.legacy_id))
        .bind(level)
        .bind(gold)
        .bind(icon.clone())
        .bind(new.now);
    if let Some(id) = wanted_id {
        query = query.bind(id);
    }
    let legacy_id: i64 = query.fetch_one(&mut *tx).await?;
    Ok(Some((legacy_id, level, gold, icon)))
}

/// The Coffer player id of a pid in `game`.
pub(super) async fn player_by_pid(
    store: &Store,
    game: &GameId,
    pid: &str,
) -> Result<Option<String>, LegacyError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM player_directory WHERE game_id = $1 AND username = $2")
            .bind(game.as_str().to_owned())
            .bind(pid.to_owned())
            .fetch_optional(store.pool())
            .await?,
    )
}

/// What an imported player brings from the old database.
#[derive(Debug, Clone)]
pub struct ImportedProfile {
    pub legacy_id: i64,
    pub level: i64,
    pub gold: i64,
    pub icon: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_are_checked() {
        assert!(validate_pid("player001").is_ok());
        assert!(validate_pid("玩家一号").is_ok());
        for bad in ["", "#legacy-guest", "a b", "tab\t", &"x".repeat(51)] {
            assert!(validate_pid(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_level_and_gold_are_game_state() {
        let icon = ProfileChange {
            icon: Some("3".into()),
            ..Default::default()
        };
        assert!(!icon.touches_game_state() && !icon.is_empty());
        let gold = ProfileChange {
            gold: Some(1),
            ..Default::default()
        };
        assert!(gold.touches_game_state());
        assert!(ProfileChange::default().is_empty());
    }
}
