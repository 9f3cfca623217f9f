//! Fulfillment: what was paid reaches the game. Order changes write an event to the outbox in
//! their own transaction; the dispatcher delivers each event to the game's delivery URL, signed,
//! retrying with backoff until the game acknowledges it or the retry window ends.

pub mod deliveries;
pub mod dispatcher;
pub mod outbox;
pub mod stream;

pub use dispatcher::{Dispatcher, delivery_signature};
pub use outbox::{EventKind, enqueue, release_held};
