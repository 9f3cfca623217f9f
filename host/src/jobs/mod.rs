//! Recovery jobs, run every `jobs.interval_s`: ask channels about payments whose notification
//! never came (补单), and close expired orders. Safe on several instances at once: attempts are
//! claimed before they are queried, and order changes are conditional transitions.

use std::time::Duration;

use crate::config::JobsConfig;
use crate::orders::{Expiry, Orders};

/// What one run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct JobReport {
    /// Orders found paid by a query.
    pub recovered: usize,
    pub closed: usize,
}

/// One run of both jobs.
pub async fn run_once(orders: &Orders, config: &JobsConfig) -> JobReport {
    let mut report = JobReport::default();
    let older = (config.query_after_s as i64) * 1000;
    let every = (config.query_every_s as i64) * 1000;
    match orders.query_unsettled(older, every, config.batch).await {
        Ok(paid) => report.recovered += paid,
        Err(error) => tracing::warn!(%error, "recovery queries failed"),
    }
    match orders.expired_pending(config.batch).await {
        Ok(expired) => {
            for order_no in expired {
                match orders.close_if_expired(&order_no).await {
                    Ok(Expiry::Closed) => report.closed += 1,
                    Ok(Expiry::Paid) => report.recovered += 1,
                    Ok(Expiry::Kept) => {}
                    Err(error) => {
                        tracing::warn!(%order_no, %error, "cannot close an expired order")
                    }
                }
            }
        }
        Err(error) => tracing::warn!(%error, "cannot list expired orders"),
    }
    if report != JobReport::default() {
        tracing::info!(
            recovered = report.recovered,
            closed = report.closed,
            "recovery jobs ran"
        );
    }
    report
}

/// Runs the jobs forever (until the task is dropped).
pub async fn run(orders: Orders, config: JobsConfig) {
    let mut every = tokio::time::interval(Duration::from_secs(config.interval_s));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        run_once(&orders, &config).await;
    }
}
