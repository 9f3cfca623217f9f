use wasmtime::Trap;

use super::state::{CallState, Violation};
use crate::error::PluginError;

/// Turns a failed call into the typed error an operator can act on.
pub(crate) fn classify_failure(error: wasmtime::Error, state: &CallState) -> PluginError {
    if let Some(violation) = error.downcast_ref::<Violation>() {
        return match violation {
            Violation::Timeout => timeout(state),
            Violation::KeyDenied { key } => PluginError::KeyDenied {
                channel: state.channel_id.to_string(),
                key: key.clone(),
            },
        };
    }
    // A refused memory.grow makes the guest's allocator abort: report the cause, not the abort.
    if state.memory.exceeded {
        return PluginError::MemoryExceeded {
            limit_bytes: state.memory.limit_bytes,
        };
    }
    tracing::debug!(channel = &*state.channel_id, error = ?error, "plugin call failed");
    match error.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => PluginError::StackOverflow,
        Some(Trap::Interrupt) => timeout(state),
        // The trap itself ("wasm `unreachable` instruction executed"); the backtrace is logged.
        Some(trap) => PluginError::Trap {
            message: trap.to_string(),
        },
        None => PluginError::Trap {
            message: error.to_string(),
        },
    }
}

fn timeout(state: &CallState) -> PluginError {
    PluginError::Timeout {
        budget_ms: u64::try_from(state.budget.as_millis()).unwrap_or(u64::MAX),
    }
}
