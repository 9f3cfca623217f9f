//! Short constructors for the contract's `channel-error`, so plugin code reads like the spec.

use crate::ChannelError;

pub type ChannelResult<T> = Result<T, ChannelError>;

/// The input is not in the channel's format.
pub fn malformed(why: impl Into<String>) -> ChannelError {
    ChannelError::Malformed(why.into())
}

/// A signature is missing or wrong.
pub fn bad_signature(why: impl Into<String>) -> ChannelError {
    ChannelError::BadSignature(why.into())
}

/// The channel does not offer this.
pub fn unsupported(why: impl Into<String>) -> ChannelError {
    ChannelError::Unsupported(why.into())
}

impl From<serde_json::Error> for ChannelError {
    fn from(e: serde_json::Error) -> Self {
        ChannelError::Malformed(format!("JSON: {e}"))
    }
}

impl From<coffer_money::AmountError> for ChannelError {
    fn from(e: coffer_money::AmountError) -> Self {
        ChannelError::Malformed(e.to_string())
    }
}
