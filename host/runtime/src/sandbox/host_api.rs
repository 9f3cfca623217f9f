//! The host functions a plugin may call (the `host`, `sealed-keys` and `access` imports of the
//! contract).

use crate::bindings::coffer::channel::host::{self, LogLevel};
use crate::bindings::coffer::channel::sealed_keys::{
    self, AeadAlgorithm, ChainPolicy, DigestAlgorithm, KeyError, SignatureAlgorithm,
};
use crate::bindings::coffer::channel::types;
use crate::keys::{self, KeyOpError, SealedKey};

use super::state::{CallState, Violation};

/// Nonces need a few dozen bytes; this bounds what one import call can make the host allocate.
const MAX_RANDOM_BYTES: u32 = 1024;

impl types::Host for CallState {}

impl crate::bindings::coffer::channel::access::Host for CallState {
    fn token(&mut self) -> Option<String> {
        self.access_token.clone()
    }
}

impl host::Host for CallState {
    fn log(&mut self, level: LogLevel, message: String) {
        if self.log_lines_left == 0 {
            return;
        }
        self.log_lines_left -= 1;
        let limit = self.engine.limits.log_line_bytes;
        let message = truncate_on_char_boundary(&message, limit);
        let channel = &*self.channel_id;
        match level {
            LogLevel::Trace => tracing::trace!(target: "coffer::plugin", channel, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "coffer::plugin", channel, "{message}"),
            LogLevel::Info => tracing::info!(target: "coffer::plugin", channel, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "coffer::plugin", channel, "{message}"),
            LogLevel::Error => tracing::error!(target: "coffer::plugin", channel, "{message}"),
        }
    }

    fn now_ms(&mut self) -> i64 {
        self.engine.clock.now_ms()
    }

    fn random_bytes(&mut self, len: u32) -> Vec<u8> {
        let mut bytes = vec![0; len.min(MAX_RANDOM_BYTES) as usize];
        getrandom::fill(&mut bytes).expect("the operating system's random source works");
        bytes
    }

    fn setting(&mut self, name: String) -> Option<String> {
        self.config.settings.get(&name).cloned()
    }

    fn endpoint(&mut self, name: String) -> Option<String> {
        self.config
            .endpoints
            .get(&name)
            .map(|e| e.as_str().to_owned())
    }
}

impl CallState {
    /// Resolves a key name within this channel only; any other name aborts the call.
    fn sealed_key(&self, name: &str) -> wasmtime::Result<&SealedKey> {
        self.config.keys.get(name).ok_or_else(|| {
            tracing::warn!(
                channel = &*self.channel_id,
                key = name,
                "plugin asked for a key that is not configured for its channel"
            );
            wasmtime::Error::new(Violation::KeyDenied {
                key: name.to_owned(),
            })
        })
    }
}

impl sealed_keys::Host for CallState {
    async fn sign(
        &mut self,
        key: String,
        algorithm: SignatureAlgorithm,
        data: Vec<u8>,
    ) -> wasmtime::Result<Result<Vec<u8>, KeyError>> {
        let sealed = self.sealed_key(&key)?;
        if !matches!(sealed, SealedKey::RsaPrivate(_)) {
            return Ok(keys::sign(sealed, algorithm, &data).map_err(to_wit));
        }
        let config = self.config.clone();
        let clock = self.clock.clone();
        let _host = clock.host_work();
        let signed = keys::off_runtime(move || {
            // Found above in the same configuration, which never changes.
            let sealed = config.keys.get(&key).expect("the key was found above");
            keys::sign(sealed, algorithm, &data)
        })
        .await;
        Ok(signed.map_err(to_wit))
    }

    fn verify(
        &mut self,
        key: String,
        algorithm: SignatureAlgorithm,
        data: Vec<u8>,
        signature: Vec<u8>,
    ) -> wasmtime::Result<Result<bool, KeyError>> {
        Ok(keys::verify(self.sealed_key(&key)?, algorithm, &data, &signature).map_err(to_wit))
    }

    async fn verify_with_chain(
        &mut self,
        root: String,
        chain: Vec<Vec<u8>>,
        policy: ChainPolicy,
        algorithm: SignatureAlgorithm,
        data: Vec<u8>,
        signature: Vec<u8>,
    ) -> wasmtime::Result<Result<bool, KeyError>> {
        self.sealed_key(&root)?;
        let config = self.config.clone();
        let trusted = self.engine.trusted_chains.clone();
        let clock = self.clock.clone();
        let _host = clock.host_work();
        // A chain is a few public-key verifications (milliseconds when not remembered): off
        // the workers.
        let verified = keys::off_runtime(move || {
            // Found above in the same configuration, which never changes.
            let root = config.keys.get(&root).expect("the root was found above");
            let policy = keys::ChainPolicy {
                length: usize::from(policy.length),
                required_extensions: &policy.required_extensions,
                valid_at: policy.valid_at,
            };
            keys::verify_with_chain(
                &trusted, root, &chain, &policy, algorithm, &data, &signature,
            )
        })
        .await;
        Ok(verified.map_err(to_wit))
    }

    fn decrypt(
        &mut self,
        key: String,
        algorithm: AeadAlgorithm,
        nonce: Vec<u8>,
        associated_data: Vec<u8>,
        ciphertext: Vec<u8>,
    ) -> wasmtime::Result<Result<Vec<u8>, KeyError>> {
        let key = self.sealed_key(&key)?;
        Ok(keys::decrypt(key, algorithm, &nonce, &associated_data, &ciphertext).map_err(to_wit))
    }

    fn keyed_digest(
        &mut self,
        key: String,
        algorithm: DigestAlgorithm,
        prefix: Vec<u8>,
        suffix: Vec<u8>,
    ) -> wasmtime::Result<Result<Vec<u8>, KeyError>> {
        Ok(keys::keyed_digest(self.sealed_key(&key)?, algorithm, &prefix, &suffix).map_err(to_wit))
    }
}

fn to_wit(error: KeyOpError) -> KeyError {
    match error {
        KeyOpError::WrongKind(why) => KeyError::WrongKind(why.to_owned()),
        KeyOpError::InvalidInput(why) => KeyError::InvalidInput(why.to_owned()),
        KeyOpError::UntrustedChain(why) => KeyError::UntrustedChain(why),
    }
}

fn truncate_on_char_boundary(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::truncate_on_char_boundary;

    #[test]
    fn truncation_never_splits_a_character() {
        assert_eq!(truncate_on_char_boundary("héllo", 2), "h");
        assert_eq!(truncate_on_char_boundary("hello", 10), "hello");
    }
}
