//! Games: the tenants. Each has its own API keys for its servers, its delivery URL and secret,
//! its catalog and its players.

mod cache;
mod iso3166;
pub mod replay;
mod signature;
mod store;

use serde::{Deserialize, Serialize};

pub use cache::{GAME_CACHE_TTL, Games};
pub use signature::{
    SIGNATURE_TOLERANCE_S, SignatureError, Verified, canonical_message, verify_signature,
};
pub use store::{
    ApiKey, DeliveryTarget, GameKey, GamePatch, NewGame, create, delivery_target, find, find_key,
    get, list, rotate_api_key, rotate_delivery_secret, update,
};

/// A game's id: 2 to 32 characters of lower-case letters, digits and '-', chosen by the
/// operator ("star-knights"). It appears in URLs and logs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GameId(String);

impl GameId {
    pub fn parse(value: &str) -> Result<Self, String> {
        let ok = (2..=32).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !value.starts_with('-')
            && !value.ends_with('-');
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(format!(
                "game id {value:?} must be 2-32 characters of a-z, 0-9 and '-', not starting or ending with '-'"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for GameId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value)
    }
}

impl From<GameId> for String {
    fn from(id: GameId) -> String {
        id.0
    }
}

impl std::fmt::Display for GameId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An officially assigned ISO 3166-1 alpha-2 region code in upper case ("CN", "US"). An
/// unknown code is refused rather than priced at a region-less fallback.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Region(String);

impl Region {
    pub fn parse(value: &str) -> Result<Self, String> {
        let code = value.to_ascii_uppercase();
        if value.len() == 2 && iso3166::is_assigned(&code) {
            Ok(Self(code))
        } else {
            Err(format!(
                "region {value:?} is not an assigned ISO 3166-1 alpha-2 code (such as \"CN\")"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Region {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value)
    }
}

impl From<Region> for String {
    fn from(region: Region) -> String {
        region.0
    }
}

impl std::fmt::Display for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A game as operators see it. Its secrets are never part of it.
#[derive(Debug, Clone, Serialize)]
pub struct Game {
    pub id: GameId,
    pub name: String,
    pub default_region: Region,
    pub delivery_url: String,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum GameError {
    #[error("{0}")]
    Invalid(String),
    #[error("game {0} already exists")]
    Exists(GameId),
    #[error("no game {0}")]
    NotFound(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Delivery URLs must be absolute http(s) URLs; plain http is for local development.
pub fn validate_delivery_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("delivery_url: {e}"))?;
    if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
        return Err("delivery_url must be an http(s) URL".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("delivery_url must not carry credentials".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_regions_parse_strictly() {
        assert!(GameId::parse("star-knights").is_ok());
        for bad in ["", "a", "Star", "-x", "x-", "a b", &"x".repeat(33)] {
            assert!(GameId::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Region::parse("cn").unwrap().as_str(), "CN");
        assert!(Region::parse("CHN").is_err());
        assert!(Region::parse("1A").is_err());
    }

    #[test]
    fn delivery_urls_must_be_http() {
        assert!(validate_delivery_url("https://game.example/coffer").is_ok());
        assert!(validate_delivery_url("ftp://game.example").is_err());
        assert!(validate_delivery_url("https://user:pw@game.example").is_err());
        assert!(validate_delivery_url("not a url").is_err());
    }
}
