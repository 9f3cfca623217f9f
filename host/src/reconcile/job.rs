//! The daily job: yesterday's statement of every channel that offers one, once. Safe on several
//! instances: a day's run is claimed before it starts, and a day done is not run again.

use std::time::Duration;

use super::{Day, ReconcileError, Reconciler, records};
use crate::store::now_ms;

/// Reconciles every channel's yesterday not reconciled yet. Returns how many days ran.
pub async fn run_once(reconciler: &Reconciler) -> usize {
    let mut ran = 0;
    for channel in reconciler.registry.channels() {
        if !channel.info().supports_statement {
            continue;
        }
        let id = channel.id();
        let day = Day::of(now_ms(), reconciler.offset_s(id))
            .previous()
            .to_string();
        match records::is_done(&reconciler.store, id, &day).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(channel = id, %day, %error, "cannot read past reconciliations");
                continue;
            }
        }
        match reconciler.run(id, &day, &|_| {}).await {
            Ok(summary) => {
                ran += 1;
                let findings = summary.findings.len();
                if findings > 0 {
                    tracing::warn!(channel = id, %day, lines = summary.lines, findings, "reconciled with findings for an operator");
                } else {
                    tracing::info!(channel = id, %day, lines = summary.lines, "reconciled");
                }
            }
            Err(ReconcileError::Busy { .. }) => {}
            Err(error) => tracing::error!(channel = id, %day, %error, "reconciliation failed"),
        }
    }
    ran
}

/// Runs the job forever (until the task is dropped).
pub async fn run(reconciler: Reconciler, interval: Duration) {
    let mut every = tokio::time::interval(interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        run_once(&reconciler).await;
    }
}
