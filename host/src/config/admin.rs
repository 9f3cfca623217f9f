//! Admin access: bearer tokens, each with a role. Only the tokens' SHA-256 digests are
//! configured, so the configuration file is not itself a secret.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What an admin token may do. Each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read-only: list plugins, look at state.
    Viewer,
    /// Day-to-day operations: reload plugins (later: re-deliver, refund).
    Operator,
    /// Everything.
    Admin,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// No tokens (the default) means the admin API refuses everyone.
    pub tokens: Vec<AdminToken>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminToken {
    /// Who holds the token; appears in logs.
    pub name: String,
    pub role: Role,
    /// Lower-case hex SHA-256 of the token (`coffer token new` prints both).
    pub sha256: String,
}

impl AdminConfig {
    pub(super) fn validate(&self) -> Result<(), String> {
        for (i, token) in self.tokens.iter().enumerate() {
            if self.tokens[..i].iter().any(|t| t.sha256 == token.sha256) {
                return Err(format!(
                    "admin token {:?}: the same token is configured twice",
                    token.name
                ));
            }
            let well_formed = token.sha256.len() == 64
                && token
                    .sha256
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            if !well_formed {
                return Err(format!(
                    "admin token {:?}: sha256 must be 64 lower-case hex digits",
                    token.name
                ));
            }
        }
        Ok(())
    }

    /// The token holder presenting `token`, if any. Compares digests in constant time.
    pub fn authenticate(&self, token: &str) -> Option<&AdminToken> {
        let presented = hex::encode(Sha256::digest(token.as_bytes()));
        let mut found = None;
        for candidate in &self.tokens {
            if constant_time_eq(candidate.sha256.as_bytes(), presented.as_bytes()) {
                found = Some(candidate);
            }
        }
        found
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A new random token and its digest, for `coffer token new`.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    let token = format!("cof_{}", hex::encode(bytes));
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    (token, digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authenticates_only_the_exact_token() {
        let (token, sha256) = new_token();
        let config = AdminConfig {
            tokens: vec![AdminToken {
                name: "ops".into(),
                role: Role::Operator,
                sha256,
            }],
        };
        config.validate().unwrap();
        assert_eq!(config.authenticate(&token).unwrap().role, Role::Operator);
        assert!(config.authenticate(&token[..token.len() - 1]).is_none());
        assert!(config.authenticate("").is_none());
        assert!(Role::Admin > Role::Operator && Role::Operator > Role::Viewer);
    }

    #[test]
    fn one_token_cannot_hold_two_roles() {
        let (_, sha256) = new_token();
        let entry = |role| AdminToken {
            name: "ops".into(),
            role,
            sha256: sha256.clone(),
        };
        let config = AdminConfig {
            tokens: vec![entry(Role::Viewer), entry(Role::Admin)],
        };
        assert!(config.validate().is_err());
    }
}
