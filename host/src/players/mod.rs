//! Players: accounts scoped to a game, Argon2id passwords, opaque session tokens stored as
//! SHA-256 digests.

mod password;
mod store;

use serde::{Deserialize, Serialize};

use crate::games::GameId;
pub use password::{HashError, PASSWORD_CHARS, PasswordHasherConfig};
pub use store::{Page, PlayerList, Players, ProfilePatch, Registration, Session};
pub(crate) use store::{escape_like, insert_in};

/// A player's id, made by Coffer (`pl_...`).
pub type PlayerId = String;

/// A player as the player, their game and operators see them. Never the password hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Player {
    pub id: PlayerId,
    pub game: GameId,
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<HashError> for PlayerError {
    fn from(error: HashError) -> Self {
        match error {
            HashError::Busy { retry_after_s } => Self::Busy { retry_after_s },
            HashError::Failed(e) => Self::Hashing(e),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlayerError {
    #[error("{0}")]
    Invalid(String),
    #[error("the username {0:?} is taken in this game")]
    UsernameTaken(String),
    #[error("wrong username or password")]
    WrongCredentials,
    #[error("the session is unknown or has expired")]
    BadSession,
    #[error("no such player")]
    NotFound,
    #[error("no such game, or it is disabled")]
    UnknownGame,
    #[error("too many password checks at once; retry in {retry_after_s} s")]
    Busy { retry_after_s: u64 },
    #[error("cannot hash the password: {0}")]
    Hashing(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// 3 to 32 characters of letters, digits, '_', '.' and '-'.
pub fn validate_username(username: &str) -> Result<(), PlayerError> {
    let ok = (3..=32).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(PlayerError::Invalid(
            "username must be 3-32 characters of letters, digits, '_', '.' and '-'".into(),
        ))
    }
}

pub fn validate_password(password: &str) -> Result<(), PlayerError> {
    if PASSWORD_CHARS.contains(&password.chars().count()) {
        Ok(())
    } else {
        Err(PlayerError::Invalid(format!(
            "password must be {} to {} characters",
            PASSWORD_CHARS.start(),
            PASSWORD_CHARS.end()
        )))
    }
}

pub fn validate_display_name(name: &str) -> Result<(), PlayerError> {
    let chars = name.chars().count();
    if (1..=50).contains(&chars) && !name.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(PlayerError::Invalid(
            "display_name must be 1-50 characters, no control characters".into(),
        ))
    }
}

/// Empty, or something shaped like an address. Coffer does not send mail; the game may.
pub fn validate_email(email: &str) -> Result<(), PlayerError> {
    let shaped = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if email.is_empty() || shaped {
        Ok(())
    } else {
        Err(PlayerError::Invalid("email is not an email address".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_fields_are_checked() {
        assert!(validate_username("knight_01").is_ok());
        for bad in ["ab", "with space", "emoji😀", &"x".repeat(33)] {
            assert!(validate_username(bad).is_err(), "{bad:?}");
        }
        assert!(validate_password("1234567").is_err());
        assert!(validate_password(&"p".repeat(129)).is_err());
        assert!(validate_password("long enough").is_ok());
        assert!(validate_email("").is_ok());
        assert!(validate_email("a@b.co").is_ok());
        assert!(validate_email("a@b").is_err());
        assert!(validate_email("a b@c.de").is_err());
        assert!(validate_display_name("Knight").is_ok());
        assert!(validate_display_name("bad\u{0}").is_err());
    }
}
