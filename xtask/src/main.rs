//! `cargo xtask <command>`: the project's build chores, in Rust so they run wherever cargo does.
//!
//! - `build-plugins`: installs the wasm32-wasip2 target if missing, builds every channel plugin
//!   into `data/plugins/` and the test fixtures into `target/wasm-fixtures/`.
//! - `test`: builds the plugins, then runs every test of both workspaces.
//! - `demo`: builds the plugins, starts the channel simulator (`coffer-sim`, 127.0.0.1:9100), the
//!   sample game server (127.0.0.1:9200) and Coffer with `examples/demo.toml`, then drives one
//!   purchase end to end (`coffer-demo`), printing each step.
//! - `bench`: builds the plugins and runs the benchmarks: plugin calls and password hashing
//!   (criterion), a 100,000-line statement reconciled, then `coffer-bench` (the release binary under HTTP load, on SQLite and on
//!   PostgreSQL).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

const WASM_TARGET: &str = "wasm32-wasip2";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    match args.first().map(String::as_str) {
        Some("build-plugins") => build_plugins(&root),
        Some("test") => test(&root, &args[1..]),
        Some("demo") => demo(&root),
        Some("bench") => bench(&root),
        _ => {
            eprintln!("usage: cargo xtask <build-plugins | test | demo | bench>");
            bail!("unknown or missing command")
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_owned()
}

fn plugins_dir(root: &Path) -> PathBuf {
    root.join("data/plugins")
}

fn fixtures_dir(root: &Path) -> PathBuf {
    root.join("target/wasm-fixtures")
}

fn run(command: &mut Command) -> Result<()> {
    eprintln!("xtask: {command:?}");
    let status = command
        .status()
        .with_context(|| format!("cannot start {command:?}"))?;
    ensure!(status.success(), "{command:?} failed with {status}");
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("rustup is needed to install the wasm32-wasip2 target")?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == WASM_TARGET)
    {
        return Ok(());
    }
    run(Command::new("rustup").args(["target", "add", WASM_TARGET]))
}

/// A plugin crate: its directory and the file name cargo gives its component.
struct PluginCrate {
    dir: PathBuf,
    package: String,
}

impl PluginCrate {
    fn artifact(&self, root: &Path) -> PathBuf {
        root.join("target/plugins")
            .join(WASM_TARGET)
            .join("release")
            .join(format!("{}.wasm", self.package.replace('-', "_")))
    }

    fn short_name(&self) -> String {
        self.dir.file_name().unwrap().to_string_lossy().into_owned()
    }
}

fn package_name(dir: &Path) -> Result<String> {
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml"))?;
    manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("name = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .map(str::to_owned)
        .with_context(|| format!("no package name in {}", dir.display()))
}

/// Every crate directly under `base` that has a Cargo.toml, skipping `skip`.
fn plugin_crates(base: &Path, skip: &[&str]) -> Result<Vec<PluginCrate>> {
    let mut crates = Vec::new();
    for entry in std::fs::read_dir(base)? {
        let dir = entry?.path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if dir.join("Cargo.toml").is_file() && !skip.contains(&name.as_str()) {
            crates.push(PluginCrate {
                package: package_name(&dir)?,
                dir,
            });
        }
    }
    crates.sort_by(|a, b| a.dir.cmp(&b.dir));
    Ok(crates)
}

fn build_wasm(root: &Path, packages: &[&str], features: &[&str]) -> Result<()> {
    let mut command = cargo();
    command
        .current_dir(root.join("plugins"))
        .args(["build", "--release", "--target", WASM_TARGET])
        .arg("--target-dir")
        .arg(root.join("target/plugins"));
    for package in packages {
        command.args(["--package", package]);
    }
    for feature in features {
        command.args(["--features", feature]);
    }
    run(&mut command)
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    // Write then rename, so a running Coffer's watcher never sees half a file.
    let temp = to.with_extension("wasm.partial");
    std::fs::copy(from, &temp).with_context(|| format!("copy {}", from.display()))?;
    std::fs::rename(&temp, to)?;
    Ok(())
}

fn build_plugins(root: &Path) -> Result<()> {
    ensure_wasm_target()?;
    let channels = plugin_crates(&root.join("plugins"), &["sdk", "fixtures", "target"])?;
    let fixtures = plugin_crates(&root.join("plugins/fixtures"), &[])?;

    // The next-version build of testpay first: the plain build below overwrites the artifact.
    build_wasm(
        root,
        &["coffer-channel-testpay"],
        &["coffer-channel-testpay/next-version"],
    )?;
    std::fs::create_dir_all(fixtures_dir(root))?;
    let testpay = channels
        .iter()
        .find(|c| c.package == "coffer-channel-testpay")
        .context("plugins/testpay is missing")?;
    copy(
        &testpay.artifact(root),
        &fixtures_dir(root).join("testpay-v2.wasm"),
    )?;

    let packages: Vec<&str> = channels
        .iter()
        .chain(&fixtures)
        .map(|c| c.package.as_str())
        .collect();
    build_wasm(root, &packages, &[])?;

    std::fs::create_dir_all(plugins_dir(root))?;
    for channel in &channels {
        let to = plugins_dir(root).join(format!("{}.wasm", channel.short_name()));
        copy(&channel.artifact(root), &to)?;
        copy(
            &channel.artifact(root),
            &fixtures_dir(root).join(format!("{}.wasm", channel.short_name())),
        )?;
        eprintln!("xtask: plugin {}", to.display());
    }
    for fixture in &fixtures {
        let to = fixtures_dir(root).join(format!("{}.wasm", fixture.short_name()));
        copy(&fixture.artifact(root), &to)?;
        eprintln!("xtask: fixture {}", to.display());
    }
    Ok(())
}

fn test(root: &Path, extra: &[String]) -> Result<()> {
    build_plugins(root)?;
    ensure_postgres()?;
    ensure_redis()?;
    ensure_mariadb()?;
    let mut totals = TestTotals::default();
    // The plugins' pure parts (the SDK's amounts, canonical strings and dates, the channels'
    // bill parsers) run natively too.
    totals.add(run_tests(
        cargo()
            .current_dir(root.join("plugins"))
            .args(["test", "--workspace"])
            .arg("--target-dir")
            .arg(root.join("target")),
    )?);
    let host = run_tests(
        cargo()
            .current_dir(root)
            .args(["test", "--workspace"])
            .args(extra)
            .env("COFFER_FIXTURES_DIR", fixtures_dir(root)),
    );
    totals.add(host?);
    if extra.is_empty() {
        // The plugins released for earlier contracts, byte for byte, pass their channels'
        // tests against this host too (SQLite only: the backends do not differ at the
        // contract). `--workspace` keeps the features, and so the builds, of the run above.
        for kept in KEPT_CONTRACTS {
            let old = old_contract_fixtures(root, kept.version)?;
            for test in kept.runtime_tests {
                totals.add(run_tests(
                    cargo()
                        .current_dir(root)
                        .args(["test", "--workspace", "--test", test])
                        .env("COFFER_FIXTURES_DIR", &old),
                )?);
            }
            if !kept.suites.is_empty() {
                totals.add(run_tests(
                    cargo()
                        .current_dir(root)
                        .args(["test", "--workspace", "--test", "suite", "--"])
                        .args(kept.suites)
                        .env("COFFER_FIXTURES_DIR", &old),
                )?);
            }
        }
    }
    // One closing line for the whole suite, whichever test binary happened to run last.
    println!("{} passed, {} failed", totals.passed, totals.failed);
    ensure!(totals.failed == 0, "{} tests failed", totals.failed);
    Ok(())
}

/// Plugins kept from an earlier contract (`host/runtime/tests/plugins-v<version>/`) and the
/// tests run again with them in place of the newest builds.
struct KeptContract {
    version: &'static str,
    /// Runtime test binaries (`host/runtime/tests/<name>.rs`).
    runtime_tests: &'static [&'static str],
    /// Filters of the suite's tests.
    suites: &'static [&'static str],
}

const KEPT_CONTRACTS: &[KeptContract] = &[
    KeptContract {
        version: "0.1.0",
        runtime_tests: &["testpay_channel"],
        suites: &[
            "channel_alipay::",
            "channel_wechatpay::",
            "channel_carespay::",
            "reconcile::sqlite::",
        ],
    },
    KeptContract {
        version: "0.2.0",
        runtime_tests: &["testpay_channel", "signed_by_chain"],
        suites: &[],
    },
];

/// The fixtures directory with the plugins kept from contract `version` in place of the
/// newest builds.
fn old_contract_fixtures(root: &Path, version: &str) -> Result<PathBuf> {
    let old = root.join(format!("target/wasm-fixtures-v{version}"));
    std::fs::create_dir_all(&old)?;
    for entry in std::fs::read_dir(fixtures_dir(root))? {
        let path = entry?.path();
        copy(&path, &old.join(path.file_name().context("a file name")?))?;
    }
    let kept = root.join(format!("host/runtime/tests/plugins-v{version}"));
    for entry in std::fs::read_dir(&kept)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wasm") {
            copy(&path, &old.join(path.file_name().context("a file name")?))?;
        }
    }
    Ok(old)
}

/// The tests run every database test on PostgreSQL too (each in a database of its own). Starts
/// the local server if it is installed but not running; `COFFER_TEST_POSTGRES` names another.
fn ensure_postgres() -> Result<()> {
    ensure_service(
        "PostgreSQL",
        "COFFER_TEST_POSTGRES",
        "127.0.0.1:5432",
        || {
            let Ok(versions) = std::fs::read_dir("/etc/postgresql") else {
                return;
            };
            for version in versions.flatten() {
                let version = version.file_name().to_string_lossy().into_owned();
                let _ = Command::new("pg_ctlcluster")
                    .args(["--skip-systemctl-redirect", &version, "main", "start"])
                    .status();
            }
        },
    )
}

/// The event-stream test publishes to Redis. Starts the local server if it is installed but not
/// running (it keeps nothing on disk); `COFFER_TEST_REDIS` names another.
fn ensure_redis() -> Result<()> {
    ensure_service("Redis", "COFFER_TEST_REDIS", "127.0.0.1:6379", || {
        let _ = Command::new("redis-server")
            .args([
                "--daemonize",
                "yes",
                "--bind",
                "127.0.0.1",
                "--port",
                "6379",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .status();
    })
}

/// The legacy import test reads a MariaDB database it creates. Starts the local server if it
/// is installed but not running; `COFFER_TEST_MYSQL` names another.
fn ensure_mariadb() -> Result<()> {
    ensure_service("MariaDB", "COFFER_TEST_MYSQL", "127.0.0.1:3306", || {
        let _ = Command::new("start-stop-daemon")
            .args([
                "--start",
                "--oknodo",
                "--background",
                "--exec",
                "/usr/sbin/mariadbd",
            ])
            .status();
    })
}

/// Returns once `addr` accepts connections, running `start` if it does not at first. Skipped
/// when the environment variable `override_var` points the tests at another server.
fn ensure_service(name: &str, override_var: &str, addr: &str, start: impl Fn()) -> Result<()> {
    if std::env::var_os(override_var).is_some() {
        return Ok(());
    }
    let addr: std::net::SocketAddr = addr.parse().expect("a socket address");
    let reachable =
        || std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(1)).is_ok();
    if reachable() {
        return Ok(());
    }
    eprintln!("xtask: {name} is not running on {addr}; starting it");
    start();
    for _ in 0..120 {
        if reachable() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    bail!("{name} did not come up on {addr}; the tests need it")
}

#[derive(Default)]
struct TestTotals {
    passed: u64,
    failed: u64,
}

impl TestTotals {
    fn add(&mut self, other: TestTotals) {
        self.passed += other.passed;
        self.failed += other.failed;
    }
}

/// Runs `cargo test`, passing its output through and adding up its "test result" lines.
fn run_tests(command: &mut Command) -> Result<TestTotals> {
    use std::io::{BufRead, BufReader};
    eprintln!("xtask: {command:?}");
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {command:?}"))?;
    let mut totals = TestTotals::default();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            let count = |word: &str| {
                rest.split(';')
                    .find_map(|part| {
                        part.trim()
                            .strip_suffix(word)?
                            .trim()
                            .rsplit(' ')
                            .next()?
                            .parse::<u64>()
                            .ok()
                    })
                    .unwrap_or(0)
            };
            totals.passed += count("passed");
            totals.failed += count("failed");
        }
    }
    let status = child.wait()?;
    ensure!(
        status.success() || totals.failed > 0,
        "{command:?} failed with {status}"
    );
    if !status.success() {
        println!("{} passed, {} failed", totals.passed, totals.failed);
        bail!("{command:?} failed with {status}");
    }
    Ok(totals)
}

fn bench(root: &Path) -> Result<()> {
    build_plugins(root)?;
    run(cargo()
        .current_dir(root)
        .args([
            "bench",
            "--package",
            "coffer-plugin-runtime",
            "--bench",
            "plugin_call",
        ])
        .env("COFFER_FIXTURES_DIR", fixtures_dir(root)))?;
    run(cargo()
        .current_dir(root)
        .args([
            "bench",
            "--package",
            "coffer-plugin-runtime",
            "--bench",
            "store_calls",
        ])
        .env("COFFER_FIXTURES_DIR", fixtures_dir(root)))?;
    run(cargo()
        .current_dir(root)
        .args(["bench", "--package", "coffer", "--bench", "passwords"]))?;
    // A busy day's statement (100,000 Alipay lines) reconciled by the real service.
    run(cargo()
        .current_dir(root)
        .args(["bench", "--package", "coffer", "--bench", "reconcile"])
        .env("COFFER_FIXTURES_DIR", fixtures_dir(root)))?;
    // The service under load: release binaries, each its own process, as in production.
    run(cargo().current_dir(root).args([
        "build",
        "--release",
        "--package",
        "coffer",
        "--package",
        "coffer-sim",
        "--package",
        "coffer-game-server",
        "--package",
        "coffer-bench",
    ]))?;
    let load = || {
        let mut command = Command::new(root.join("target/release/coffer-bench"));
        command
            .current_dir(root)
            .args(["--plugins", "data/plugins"]);
        command
    };
    run(&mut load())?;
    ensure_postgres()?;
    let server = std::env::var("COFFER_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    run(load().args(["--postgres", &server]))
}

/// Runs the channel simulator and Coffer side by side, as `examples/demo.toml` expects.
fn demo(root: &Path) -> Result<()> {
    build_plugins(root)?;
    let keys = root.join("data/demo-keys");
    std::fs::create_dir_all(&keys)?;
    let secret = keys.join("testpay-api-secret.hex");
    if !secret.exists() {
        let mut bytes = [0u8; 32];
        getrandom(&mut bytes)?;
        std::fs::write(&secret, hex(&bytes))?;
        restrict(&secret)?;
    }
    run(cargo().current_dir(root).args([
        "build",
        "--package",
        "coffer",
        "--package",
        "coffer-sim",
        "--package",
        "coffer-game-server",
        "--package",
        "coffer-demo",
    ]))?;
    let sim_keys = root.join("data/sim-keys");
    let _ = std::fs::remove_file(sim_keys.join("wechat-platform-serial.txt"));
    let mut sim = Command::new(root.join("target/debug/coffer-sim"))
        .current_dir(root)
        .args(["--listen", "127.0.0.1:9100", "--keys-dir", "data/sim-keys"])
        .spawn()
        .context("cannot start coffer-sim")?;
    let mut game = Command::new(root.join("target/debug/coffer-game-server"))
        .current_dir(root)
        .args(["--listen", "127.0.0.1:9200"])
        .spawn()
        .context("cannot start coffer-game-server")?;
    // The simulator writes its keys first; Coffer loads them at start.
    for _ in 0..100 {
        if sim_keys.join("wechat-platform-serial.txt").exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let mut coffer = Command::new(root.join("target/debug/coffer"))
        .current_dir(root)
        .args(["serve", "--config", "examples/demo.toml"])
        .spawn()
        .context("cannot start coffer")?;
    // One purchase end to end, printed step by step; then everything keeps running.
    let driven = run(Command::new(root.join("target/debug/coffer-demo")).current_dir(root));
    if let Err(error) = &driven {
        eprintln!("xtask: the scripted purchase failed: {error:#}");
    }
    eprintln!(
        "\nxtask: Coffer on http://127.0.0.1:8080, simulator on :9100, game server on :9200; Ctrl-C stops them"
    );
    let served = coffer.wait();
    let _ = sim.kill();
    let _ = game.kill();
    ensure!(served?.success(), "coffer stopped with an error");
    Ok(())
}

fn getrandom(buf: &mut [u8]) -> Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(buf)?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(unix)]
fn restrict(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

#[cfg(not(unix))]
fn restrict(_: &Path) -> Result<()> {
    Ok(())
}
