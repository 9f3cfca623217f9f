//! Orders: the order center. An order records who buys which SKU for how much; payment
//! attempts record each try at paying it through a channel.

mod order_no;
mod state;

pub use order_no::OrderNo;
pub use state::{AttemptStatus, IllegalTransition, OrderStatus};
