//! Fulfillment: what was paid reaches the game. Order changes write an event to the outbox in
//! their own transaction; the dispatcher delivers each event to the game's delivery URL, signed,
//! retrying with backoff until the game acknowledges it or the retry window ends.

pub mod outbox;

pub use outbox::{EventKind, enqueue};
