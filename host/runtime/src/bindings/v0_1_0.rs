//! Contract 0.1.0, frozen in `wit/since_v0.1.0/`: its generated types and how they map to the
//! newest. The `host` import did not change, so a 0.1.0 plugin is linked to the newest under
//! its 0.1.0 name; `sealed-keys` gained an algorithm, so its 0.1.0 functions call the newest
//! with their arguments upgraded; the types the exports trade are adapted both ways.
//!
//! What changed since: `statement-line.refund-no` (0.2.0), which a 0.1.0 plugin never sends;
//! `signature-algorithm.ecdsa-p256-sha256` (0.2.0), which it never asks for; the store records,
//! callback cases and exports (0.3.0), which it never uses; the requests' `started-at` (0.3.0),
//! which it is not given: asked to act as a store, it is
//! `unsupported` without being called.

use wasmtime::component::{HasSelf, Linker};

use super::adapt::{Downgrade, Upgrade, before_0_3_0_shapes, same_shape};
use crate::sandbox::CallState;

pub const VERSION: &str = "0.1.0";

wasmtime::component::bindgen!({
    path: "../../wit/since_v0.1.0",
    world: "channel",
    with: {
        "coffer:channel/host": super::coffer::channel::host,
    },
    imports: {
        "coffer:channel/sealed-keys": trappable,
        "coffer:channel/sealed-keys.sign": async | trappable,
    },
    exports: { default: async },
});

/// Defines the 0.1.0 imports on `linker`: the newest `host` under its 0.1.0 name, 0.1.0's
/// `sealed-keys` calling the newest.
pub(crate) fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    fn getter(state: &mut CallState) -> &mut CallState {
        state
    }
    coffer::channel::types::add_to_linker::<_, HasSelf<_>>(linker, getter)?;
    let mut host = linker.instance("coffer:channel/host@0.1.0")?;
    super::coffer::channel::host::add_to_linker_instance::<_, HasSelf<_>>(&mut host, getter)?;
    coffer::channel::sealed_keys::add_to_linker::<_, HasSelf<_>>(linker, getter)?;
    Ok(())
}

impl coffer::channel::types::Host for CallState {}

use super::types as new;
use coffer::channel::types as old;

before_0_3_0_shapes!(old => new);

/// 0.1.0 statement lines carry no refund number: reconciliation matches their refunds by
/// payment and amount, as it always did.
impl Upgrade for old::StatementLine {
    type New = new::StatementLine;
    fn upgrade(self) -> new::StatementLine {
        new::StatementLine {
            kind: self.kind.upgrade(),
            order_no: self.order_no,
            refund_no: None,
            channel_txn_id: self.channel_txn_id,
            amount: self.amount.upgrade(),
            fee: self.fee.upgrade(),
            occurred_at: self.occurred_at,
            channel_status: self.channel_status,
        }
    }
}

/// Clears the copy of a card that a 0.1.0 plugin was given (see `channel::card`).
pub(crate) fn wipe(card: &mut old::Card) {
    use zeroize::Zeroize;
    card.number.zeroize();
    card.cvc.zeroize();
}

use super::coffer::channel::sealed_keys as new_keys;
use coffer::channel::sealed_keys as old_keys;

same_shape! { old_keys => new_keys;
    variant DigestAlgorithm { Md5, Sha1, Sha256, Sha512 }
    variant AeadAlgorithm { Aes256Gcm }
}

/// 0.1.0 has no `untrusted-chain` (nor `verify-with-chain`, the only call that gives it).
impl Downgrade<old_keys::KeyError> for new_keys::KeyError {
    fn downgrade(&self) -> old_keys::KeyError {
        match self {
            Self::WrongKind(why) => old_keys::KeyError::WrongKind(why.clone()),
            Self::InvalidInput(why) | Self::UntrustedChain(why) => {
                old_keys::KeyError::InvalidInput(why.clone())
            }
        }
    }
}

impl Upgrade for old_keys::SignatureAlgorithm {
    type New = new_keys::SignatureAlgorithm;
    fn upgrade(self) -> new_keys::SignatureAlgorithm {
        use new_keys::SignatureAlgorithm as New;
        match self {
            Self::RsaPkcs1Sha256 => New::RsaPkcs1Sha256,
            Self::RsaPkcs1Sha1 => New::RsaPkcs1Sha1,
            Self::HmacSha256 => New::HmacSha256,
            Self::HmacSha512 => New::HmacSha512,
            Self::HmacSha1 => New::HmacSha1,
        }
    }
}

/// A newest key answer as 0.1.0's.
fn key_answer<T>(
    answer: wasmtime::Result<Result<T, new_keys::KeyError>>,
) -> wasmtime::Result<Result<T, old_keys::KeyError>> {
    Ok(answer?.map_err(|error| error.downgrade()))
}

/// 0.1.0's sealed-key calls are the newest ones: same keys, same rules, same traps.
impl old_keys::Host for CallState {
    async fn sign(
        &mut self,
        key: String,
        algorithm: old_keys::SignatureAlgorithm,
        data: Vec<u8>,
    ) -> wasmtime::Result<Result<Vec<u8>, old_keys::KeyError>> {
        key_answer(new_keys::Host::sign(self, key, algorithm.upgrade(), data).await)
    }

    fn verify(
        &mut self,
        key: String,
        algorithm: old_keys::SignatureAlgorithm,
        data: Vec<u8>,
        signature: Vec<u8>,
    ) -> wasmtime::Result<Result<bool, old_keys::KeyError>> {
        let algorithm = algorithm.upgrade();
        key_answer(new_keys::Host::verify(
            self, key, algorithm, data, signature,
        ))
    }

    fn decrypt(
        &mut self,
        key: String,
        algorithm: old_keys::AeadAlgorithm,
        nonce: Vec<u8>,
        associated_data: Vec<u8>,
        ciphertext: Vec<u8>,
    ) -> wasmtime::Result<Result<Vec<u8>, old_keys::KeyError>> {
        let (algorithm, aad) = (algorithm.upgrade(), associated_data);
        key_answer(new_keys::Host::decrypt(
            self, key, algorithm, nonce, aad, ciphertext,
        ))
    }

    fn keyed_digest(
        &mut self,
        key: String,
        algorithm: old_keys::DigestAlgorithm,
        prefix: Vec<u8>,
        suffix: Vec<u8>,
    ) -> wasmtime::Result<Result<Vec<u8>, old_keys::KeyError>> {
        let algorithm = algorithm.upgrade();
        key_answer(new_keys::Host::keyed_digest(
            self, key, algorithm, prefix, suffix,
        ))
    }
}
