//! The `coffer` command line.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use coffer_plugin_runtime::{ArtifactCache, ChannelConfigs, PluginEngine, Registry};

use crate::config::{Config, Role, new_token};

#[derive(Debug, Parser)]
#[command(
    name = "coffer",
    version,
    about = "Payment and commerce center for game studios"
)]
pub struct Cli {
    /// Configuration file (TOML). Default: ./coffer.toml if present, else built-in defaults.
    #[arg(long, short, global = true, env = "COFFER_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service.
    Serve,
    /// Inspect channel plugins.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// Check the configuration, key files included, and print it without secrets.
    CheckConfig,
    /// Create or update the database schema (`serve` also does, unless
    /// `database.migrate_on_start` is off).
    Migrate,
    /// Import the old three-service system's MariaDB/MySQL `game_db` (players and payment
    /// records) into the legacy game. Safe to run again: nothing is imported twice.
    ImportLegacy {
        /// The old database, e.g. mysql://root:password@127.0.0.1:3306/game_db.
        #[arg(long = "from")]
        from: String,
        /// The game to import into; `legacy.game` by default.
        #[arg(long)]
        game: Option<String>,
        /// The UTC offset the old `pay_time` values were written in.
        #[arg(long, default_value = "+00:00", allow_hyphen_values = true)]
        time_zone: String,
    },
    /// The books: check that they balance and cover every payment and refund.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Reconcile one channel's statement of one day by hand (the daily job does yesterday's):
    /// prints the findings as JSON, a progress bar on the terminal while it runs.
    Reconcile {
        #[arg(long)]
        channel: String,
        /// YYYY-MM-DD in the channel's time zone; yesterday by default.
        #[arg(long)]
        day: Option<String>,
    },
    /// Admin tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Load every plugin in the plugins directory and list what loaded and what failed.
    List,
    /// Compile and validate one plugin file, as a reload would.
    Check { file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Check every invariant of the books; exits non-zero on any violation.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a new random admin token and the configuration entry that grants it.
    New {
        #[arg(long, default_value = "operator")]
        name: String,
        #[arg(long, value_enum, default_value = "operator")]
        role: RoleArg,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    Viewer,
    Operator,
    Admin,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Viewer => Role::Viewer,
            RoleArg::Operator => Role::Operator,
            RoleArg::Admin => Role::Admin,
        }
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Token {
        command: TokenCommand::New { name, role },
    } = &cli.command
    {
        let (token, sha256) = new_token();
        let role = format!("{:?}", Role::from(*role)).to_lowercase();
        println!("token (give it to {name}, it is shown only once):\n  {token}\n");
        println!(
            "configuration entry:\n  [[admin.tokens]]\n  name = {name:?}\n  role = \"{role}\"\n  sha256 = \"{sha256}\""
        );
        return Ok(());
    }
    let config = Config::load(cli.config.as_deref())?;
    crate::telemetry::init(&config.log);
    match cli.command {
        Command::Serve => crate::app::start(config).await?.until_signal().await,
        Command::Plugins {
            command: PluginsCommand::List,
        } => list_plugins(&config).await,
        Command::Plugins {
            command: PluginsCommand::Check { file },
        } => check_plugin(&config, &file).await,
        Command::CheckConfig => {
            crate::config::load_channel_configs(&config.channels)?;
            println!("{}", to_json(&config)?);
            Ok(())
        }
        Command::Migrate => {
            let url = config.database.effective_url();
            let store = crate::store::Store::connect(&url, 1)
                .await
                .with_context(|| format!("cannot open {}", crate::app::redact_url(&url)))?;
            store.migrate().await?;
            store.close().await;
            println!("database {} is up to date", crate::app::redact_url(&url));
            Ok(())
        }
        Command::ImportLegacy {
            from,
            game,
            time_zone,
        } => import_legacy(&config, &from, game, time_zone).await,
        Command::Ledger {
            command: LedgerCommand::Check,
        } => check_ledger(&config).await,
        Command::Reconcile { channel, day } => reconcile(config, &channel, day).await,
        Command::Token { .. } => unreachable!("handled above"),
    }
}

/// `coffer ledger check`: the report as JSON; an error (a non-zero exit) when a violation is
/// found.
async fn check_ledger(config: &Config) -> anyhow::Result<()> {
    let url = config.database.effective_url();
    let store = crate::store::Store::connect(&url, 1)
        .await
        .with_context(|| format!("cannot open {}", crate::app::redact_url(&url)))?;
    let report = crate::ledger::check(&store)
        .await
        .context("cannot read the books")?;
    store.close().await;
    println!("{}", serde_json::to_string_pretty(&report)?);
    anyhow::ensure!(
        report.is_clean(),
        "the books broke {} invariant(s); see \"violations\" above",
        report.violations.len()
    );
    Ok(())
}

/// `coffer reconcile`: the run's summary as JSON; a progress bar on stderr while it runs.
async fn reconcile(mut config: Config, channel: &str, day: Option<String>) -> anyhow::Result<()> {
    use crate::reconcile::{Day, Progress, Reconciler};
    config.plugins.watch = false;
    let channels = crate::channels::Channels::start(&config).await?;
    let store = crate::app::open_store(&config).await?;
    let commerce = crate::app::commerce(&config, &channels, &store)?;
    let reconciler = Reconciler::new(
        store.clone(),
        commerce.orders,
        channels.registry.clone(),
        config.reconcile.offsets(),
    );
    let day = day.unwrap_or_else(|| {
        Day::of(crate::store::now_ms(), reconciler.offset_s(channel))
            .previous()
            .to_string()
    });
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} lines ({eta})")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_message(format!("{channel} {day}: downloading"));
    let progress = |step: Progress| match step {
        Progress::Downloaded { lines } => {
            bar.set_length(lines);
            bar.set_message(format!("{channel} {day}: matching"));
        }
        Progress::Matched { done, total } => {
            bar.set_length(total);
            bar.set_position(done);
        }
    };
    let outcome = reconciler.run(channel, &day, &progress).await;
    bar.finish_and_clear();
    store.close().await;
    let summary = outcome.with_context(|| format!("cannot reconcile {channel} for {day}"))?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

async fn import_legacy(
    config: &Config,
    from: &str,
    game: Option<String>,
    time_zone: String,
) -> anyhow::Result<()> {
    let game = game.unwrap_or_else(|| config.legacy.game.clone());
    let game = crate::games::GameId::parse(&game)
        .map_err(|e| anyhow::anyhow!("--game (or legacy.game) must name a game: {e}"))?;
    let store = crate::app::open_store(config).await?;
    let hasher = crate::players::PasswordHasherConfig::new(&config.players.password_hash)
        .map_err(anyhow::Error::msg)?;
    let games = crate::games::Games::new(store.clone());
    let players =
        crate::players::Players::new(store.clone(), games, hasher, config.players.session_ttl_s);
    let source = crate::legacy::import::ImportSource {
        url: from.to_owned(),
        time_zone,
    };
    println!(
        "importing {} into game {game}",
        crate::app::redact_url(from)
    );
    let report = crate::legacy::import::run(&store, &players, &game, &source)
        .await
        .map_err(|e| anyhow::anyhow!("import failed: {e}"))?;
    store.close().await;
    println!("{report}");
    Ok(())
}

fn to_json(config: &Config) -> anyhow::Result<String> {
    // Key sections are skipped when serializing; only their names would be there anyway.
    let mut config = config.clone();
    config.database.url = crate::app::redact_url(&config.database.effective_url());
    config.stream.redis_url = config
        .stream
        .effective_url()
        .map(|url| crate::app::redact_url(&url))
        .unwrap_or_default();
    serde_json::to_string_pretty(&config).context("cannot print the configuration")
}

async fn list_plugins(config: &Config) -> anyhow::Result<()> {
    let registry = crate::channels::build_registry(config)?;
    let report = registry.reload().await;
    println!(
        "{:<12} {:<10} {:<8} {:<12} FILE",
        "CHANNEL", "VERSION", "CONTRACT", "SHA256"
    );
    for status in registry.statuses() {
        println!(
            "{:<12} {:<10} {:<8} {:<12} {}",
            status.channel,
            status.version,
            status.contract_version,
            &status.sha256[..12],
            status.file
        );
        for (what, missing) in [
            ("keys", &status.missing_keys),
            ("settings", &status.missing_settings),
            ("endpoints", &status.missing_endpoints),
        ] {
            if !missing.is_empty() {
                println!("  missing {what}: {}", missing.join(", "));
            }
        }
    }
    for failure in &report.failed {
        println!("FAILED {}: {}", failure.file, failure.error);
    }
    anyhow::ensure!(
        report.failed.is_empty(),
        "{} plugin file(s) failed to load",
        report.failed.len()
    );
    Ok(())
}

async fn check_plugin(config: &Config, file: &Path) -> anyhow::Result<()> {
    // A fresh private directory: a predictable one could hold someone else's files.
    let temp = tempfile::tempdir()?;
    let dir = temp.path().to_owned();
    let name = file.file_name().context("not a file")?;
    std::fs::copy(file, dir.join(name))
        .with_context(|| format!("cannot read {}", file.display()))?;
    let engine = PluginEngine::new(config.plugins.limits.to_runtime())?;
    let registry = Arc::new(Registry::new(
        engine,
        &dir,
        ArtifactCache::default(),
        ChannelConfigs::default(),
    ));
    let report = registry.reload().await;
    if let Some(failure) = report.failed.first() {
        anyhow::bail!("{}: {}", file.display(), failure.error);
    }
    for channel in registry.channels() {
        let info = channel.info();
        println!(
            "ok: channel {} ({}) version {} for contract {}; methods {:?}, currencies {:?}",
            info.id, info.name, info.version, info.contract_version, info.methods, info.currencies
        );
    }
    Ok(())
}
