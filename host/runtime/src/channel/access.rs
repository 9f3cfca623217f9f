//! The access token of a channel that authenticates with one (Google Play's OAuth 2.0): fetched
//! through the plugin's `store.build-access-token-request`, kept here for its lifetime and lent
//! to every call through the `access.token` import, so that no call fetches its own.
//!
//! The slot belongs to one loaded plugin version: a reload starts with none, and the first
//! call that needs a token fetches it again.

use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

/// How long before its end a token stops being lent: a call that started with it may still
/// be on its way to the channel when it expires.
const EXPIRY_MARGIN_MS: i64 = 60_000;

#[derive(Default)]
pub(super) struct TokenSlot {
    token: Mutex<Option<Held>>,
    /// Held while a token is fetched, so that concurrent calls wait for one fetch.
    pub(super) refresh: tokio::sync::Mutex<()>,
    /// Set once the plugin said it uses no token, so that calls stop asking.
    pub(super) none_needed: AtomicBool,
}

struct Held {
    token: String,
    /// Unix milliseconds after which it is not lent any more.
    usable_until_ms: i64,
}

impl TokenSlot {
    /// The token, while it is usable at `now_ms`.
    pub(super) fn current(&self, now_ms: i64) -> Option<String> {
        let held = self.token.lock().expect("token lock");
        held.as_ref()
            .filter(|h| now_ms < h.usable_until_ms)
            .map(|h| h.token.clone())
    }

    pub(super) fn store(&self, token: String, expires_in_s: u32, now_ms: i64) {
        let usable_until_ms = now_ms + i64::from(expires_in_s) * 1000 - EXPIRY_MARGIN_MS;
        *self.token.lock().expect("token lock") = Some(Held {
            token,
            usable_until_ms,
        });
    }

    pub(super) fn forget(&self) {
        *self.token.lock().expect("token lock") = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_lent_until_a_minute_before_it_expires() {
        let slot = TokenSlot::default();
        assert_eq!(slot.current(0), None);
        slot.store("ya29.token".into(), 3600, 1_000);
        assert_eq!(slot.current(1_000).as_deref(), Some("ya29.token"));
        assert_eq!(slot.current(3_540_999).as_deref(), Some("ya29.token"));
        assert_eq!(slot.current(3_541_000), None);
        slot.store("short".into(), 30, 0);
        assert_eq!(
            slot.current(0),
            None,
            "a token shorter than the margin is never lent"
        );
        slot.forget();
        assert_eq!(slot.current(0), None);
    }
}
