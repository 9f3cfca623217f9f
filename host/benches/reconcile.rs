//! Reconciling a big day: N payments Coffer recorded as paid, and Alipay's statement of the
//! same N trades (a zip of GBK CSV files served by the simulator), matched by the real service
//! with the real plugin. Prints the time of the run and the peak memory it added.
//!
//! `cargo bench -p coffer --bench reconcile` (N = 100,000; `COFFER_BENCH_LINES` for another),
//! after `cargo xtask build-plugins`.

use std::time::Instant;

use coffer::config::Config;
use coffer::reconcile::{Day, Progress};
use coffer_sim::{SimConfig, keys::SimKeys};

/// Rows per INSERT while seeding.
const CHUNK: usize = 400;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Resets the peak to the current size (Linux: writing 5 to clear_refs).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let lines: usize = std::env::var("COFFER_BENCH_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir()?;
    let keys_dir = dir.path().join("sim-keys");
    std::fs::create_dir_all(&keys_dir)?;
    let keys = SimKeys::generate();
    keys.write_for_coffer(&keys_dir)?;
    let sim = coffer_sim::start(
        SimConfig {
            listen: "127.0.0.1:0".parse()?,
            time_scale: 0.001,
        },
        keys,
    )
    .await?;
    let fixtures = std::env::var_os("COFFER_FIXTURES_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/wasm-fixtures").into());
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins)?;
    std::fs::copy(fixtures.join("alipay.wasm"), plugins.join("alipay.wasm"))?;
    let demo = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/demo.toml"
    ))?
    .replace("http://127.0.0.1:9100", &sim.sim.base_url)
    .replace("data/sim-keys/", &format!("{}/", keys_dir.display()));
    let mut config = Config::from_toml(&demo)?;
    config.channels.retain(|id, _| id == "alipay");
    config.plugins.dir = plugins;
    config.plugins.cache_dir = dir.path().join("cache");
    config.plugins.watch = false;
    config.server.listen = "127.0.0.1:0".parse()?;
    config.database.url = format!("sqlite://{}", dir.path().join("coffer.db").display());
    config.jobs.enabled = false;
    config.reconcile.enabled = false;
    config.delivery.enabled = false;
    let running = coffer::app::start(config).await?;
    let state = running.state.clone();

    // Coffer's side: one game, one player, N paid orders with their attempts.
    let seeding = Instant::now();
    let pool = state.store.pool();
    let now = coffer::store::now_ms();
    sqlx::query(
        "INSERT INTO games (id, name, default_region, delivery_url, delivery_secret, enabled, \
         created_at, updated_at) VALUES ('bench', 'Bench', 'CN', 'http://127.0.0.1:9/', 'x', 1, $1, $1)",
    )
    .bind(now)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO players (id, game_id, username, password_hash, display_name, email, \
         created_at, updated_at) VALUES ('p1', 'bench', 'ada', 'x', 'Ada', '', $1, $1)",
    )
    .bind(now)
    .execute(pool)
    .await?;
    for start in (0..lines).step_by(CHUNK) {
        let end = (start + CHUNK).min(lines);
        let orders: Vec<String> = (start..end)
            .map(|i| {
                format!(
                    "('B{i}', 'bench', 'p1', 'm{i}', 'gems-100', 'CN', 600, 'CNY', '100 Gems', '[]', \
                     'paid', 0, '', '', {now}, {now}, 0, {now}, {now})"
                )
            })
            .collect();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO orders (order_no, game_id, player_id, merchant_order_no, sku_code, region, \
             amount_minor, currency, subject, grants, status, holds_stock, client_ip, device, \
             expires_at, paid_at, refunded_minor, created_at, updated_at) VALUES {}",
            orders.join(", ")
        )))
        .execute(pool)
        .await?;
        let attempts: Vec<String> = (start..end)
            .map(|i| {
                format!(
                    "('B{i}', 1, 'B{i}', 'alipay', 'alipay', 'qr_code', 'paid', NULL, \
                     'TRADE_SUCCESS', NULL, NULL, NULL, {now}, {now})"
                )
            })
            .collect();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO payment_attempts (order_no, attempt_no, payment_ref, channel, method, \
             flow, status, channel_txn_id, channel_status, failure_code, failure_message, \
             next_action, created_at, updated_at) VALUES {}",
            attempts.join(", ")
        )))
        .execute(pool)
        .await?;
    }
    // The channel's side: the same N trades, paid today.
    reqwest::Client::new()
        .post(sim.url("/_control/alipay/seed"))
        .json(&serde_json::json!({ "prefix": "B", "count": lines, "amount_minor": 600 }))
        .send()
        .await?
        .error_for_status()?;
    println!(
        "seeded {lines} paid orders and trades in {:.1?}",
        seeding.elapsed()
    );

    let day = Day::of(coffer::store::now_ms(), 8 * 3600).to_string();
    reset_peak();
    let before = peak_rss_kib();
    let started = Instant::now();
    let summary = state
        .reconciler
        .run("alipay", &day, &|step| {
            if let Progress::Downloaded { lines } = step {
                println!(
                    "  statement read: {lines} lines after {:.1?}",
                    started.elapsed()
                );
            }
        })
        .await?;
    let elapsed = started.elapsed();
    let peak = peak_rss_kib();
    println!(
        "reconcile {} lines: {:.2?} ({:.0} lines/s), {} matched, {} findings, peak RSS +{} MiB (of {} MiB)",
        summary.lines,
        elapsed,
        summary.lines as f64 / elapsed.as_secs_f64(),
        summary.matched,
        summary.findings.len(),
        peak.saturating_sub(before) / 1024,
        peak / 1024,
    );
    running.stop().await?;
    Ok(())
}
