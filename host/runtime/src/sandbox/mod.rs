//! One plugin call: a fresh store with its limits, the host functions it may use, and the
//! classification of whatever went wrong.

mod clock;
mod host_api;
mod outcome;
mod output_size;
mod state;

pub(crate) use clock::{CallClock, within_budget};
pub(crate) use outcome::classify_failure;
pub(crate) use output_size::OutputSize;
pub(crate) use state::{CallState, Violation};
