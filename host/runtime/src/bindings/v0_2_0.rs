//! Contract 0.2.0, frozen in `wit/since_v0.2.0/`: its generated types and how they map to the
//! newest. Its imports did not change, so a 0.2.0 plugin is linked to the newest `host` and
//! `sealed-keys` under their 0.2.0 names; the types the exports trade are adapted both ways.
//!
//! What changed since (0.3.0): `payment-request.started-at` and `query-request.started-at`,
//! which a 0.2.0 plugin is not given; the store records, `callback-event.store` and
//! `callback-verdict.store-claim`, which a 0.2.0 plugin never sends; the `store` export and the
//! `access` import, which it has not: asked to act as a store, it is `unsupported` without being
//! called.

use wasmtime::component::{HasSelf, Linker};

use super::adapt::{before_0_3_0_shapes, same_shape};
use crate::sandbox::CallState;

pub const VERSION: &str = "0.2.0";

wasmtime::component::bindgen!({
    path: "../../wit/since_v0.2.0",
    world: "channel",
    with: {
        "coffer:channel/host": super::coffer::channel::host,
        "coffer:channel/sealed-keys": super::coffer::channel::sealed_keys,
    },
    exports: { default: async },
});

/// Defines the 0.2.0 imports on `linker`: the newest `host` and `sealed-keys` under their
/// 0.2.0 names.
pub(crate) fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    fn getter(state: &mut CallState) -> &mut CallState {
        state
    }
    coffer::channel::types::add_to_linker::<_, HasSelf<_>>(linker, getter)?;
    let mut host = linker.instance("coffer:channel/host@0.2.0")?;
    super::coffer::channel::host::add_to_linker_instance::<_, HasSelf<_>>(&mut host, getter)?;
    let mut keys = linker.instance("coffer:channel/sealed-keys@0.2.0")?;
    super::coffer::channel::sealed_keys::add_to_linker_instance::<_, HasSelf<_>>(
        &mut keys, getter,
    )?;
    Ok(())
}

impl coffer::channel::types::Host for CallState {}

use super::types as new;
use coffer::channel::types as old;

before_0_3_0_shapes!(old => new);

same_shape! { old => new;
    record StatementLine {
        kind, order_no, refund_no, channel_txn_id, amount, fee, occurred_at, channel_status,
    }
}

/// Clears the copy of a card that a 0.2.0 plugin was given (see `channel::card`).
pub(crate) fn wipe(card: &mut old::Card) {
    use zeroize::Zeroize;
    card.number.zeroize();
    card.cvc.zeroize();
}
