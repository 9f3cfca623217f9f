//! Password hashing at the default (OWASP) cost: what logins and registrations cost in time,
//! how many the service checks per second with its one-per-core limit, and what stays
//! resident afterwards (the hashing threads keep their Argon2 memory; nothing else should).
//!
//! `cargo xtask bench` runs it. Figures are for this process; RSS from /proc/self/status.

use std::time::{Duration, Instant};

use coffer::config::PasswordHashConfig;
use coffer::players::PasswordHasherConfig;

fn rss_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let config = PasswordHashConfig::default();
        let before = rss_mib("VmRSS:");
        let hasher = PasswordHasherConfig::new(&config).map_err(anyhow::Error::msg)?;
        println!(
            "argon2id m={} KiB t={} p={}; RSS at start {before:.1} MiB",
            config.memory_kib, config.iterations, config.parallelism
        );

        // One at a time: the latency of a registration and of a login.
        let mut hashes = Vec::new();
        let mut hash_times = Vec::new();
        for i in 0..20 {
            let started = Instant::now();
            hashes.push(hasher.hash(format!("password number {i}")).await?);
            hash_times.push(started.elapsed());
        }
        let mut verify_times = Vec::new();
        for (i, phc) in hashes.iter().enumerate() {
            let started = Instant::now();
            let ok = hasher
                .verify(format!("password number {i}"), Some(phc.clone()))
                .await?;
            assert!(ok);
            verify_times.push(started.elapsed());
        }
        hash_times.sort();
        verify_times.sort();
        println!(
            "one at a time: hash p50 {:?}, verify p50 {:?} p99 {:?}",
            percentile(&hash_times, 0.5),
            percentile(&verify_times, 0.5),
            percentile(&verify_times, 0.99)
        );

        // Many at once, as a burst of logins: the service runs one check per core.
        let logins = 200;
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..logins {
            let hasher = hasher.clone();
            let phc = hashes[i % hashes.len()].clone();
            let password = format!("password number {}", i % hashes.len());
            tasks.spawn(async move { hasher.verify(password, Some(phc)).await });
        }
        let (mut ok, mut busy) = (0, 0);
        while let Some(done) = tasks.join_next().await {
            match done? {
                Ok(true) => ok += 1,
                Ok(false) => anyhow::bail!("a correct password was refused"),
                Err(_) => busy += 1,
            }
        }
        let elapsed = started.elapsed();
        println!(
            "burst of {logins}: {ok} checked, {busy} told to retry (busy), {:.1} checks/s",
            ok as f64 / elapsed.as_secs_f64()
        );
        println!(
            "RSS now {:.1} MiB, peak {:.1} MiB",
            rss_mib("VmRSS:"),
            rss_mib("VmHWM:")
        );
        Ok(())
    })
}
