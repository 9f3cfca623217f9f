//! Every plugin in the plugins directory, by channel id, swapped atomically on reload.
//!
//! A reload compiles and validates new files first and only then publishes a new map in one
//! atomic store. Calls already running hold an `Arc` to the version they started with and
//! finish on it. A file that fails to load never replaces the version serving its channel.

pub mod watch;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::channel::{ArtifactCache, Channel, ChannelStatus, PluginFile, load_channel};
use crate::config::ChannelConfigs;
use crate::engine::PluginEngine;
use crate::error::LoadError;

/// A plugin file can be at most this big; real plugins are a few hundred kilobytes.
const MAX_PLUGIN_FILE_BYTES: u64 = 64 << 20;

pub struct Registry {
    engine: PluginEngine,
    dir: PathBuf,
    cache: ArtifactCache,
    configs: ChannelConfigs,
    channels: ArcSwap<HashMap<String, Arc<Channel>>>,
    /// What each file last held; only touched under the lock, so reloads never interleave.
    files: Mutex<BTreeMap<PathBuf, FileRecord>>,
    /// Reloads done so far.
    reloads: AtomicU64,
}

#[derive(Debug, Clone, Default)]
struct FileRecord {
    sha256: String,
    /// The channel this file serves, if its last good version is live.
    channel: Option<String>,
    failure: Option<FileFailure>,
}

/// A plugin file that could not be loaded, as shown to operators.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileFailure {
    pub file: String,
    pub sha256: String,
    pub error: String,
    /// Unix milliseconds.
    pub at_ms: u64,
    /// The channel still served by this file's previous good version, if any.
    pub still_serving: Option<String>,
}

/// What one reload did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ReloadReport {
    /// Channels whose new version went live: (channel, version).
    pub loaded: Vec<(String, String)>,
    pub unchanged: usize,
    pub failed: Vec<FileFailure>,
    /// Channels whose file disappeared.
    pub removed: Vec<String>,
}

impl Registry {
    pub fn new(
        engine: PluginEngine,
        dir: impl Into<PathBuf>,
        cache: ArtifactCache,
        configs: ChannelConfigs,
    ) -> Self {
        Self {
            engine,
            dir: dir.into(),
            cache,
            configs,
            channels: ArcSwap::from_pointee(HashMap::new()),
            files: Mutex::new(BTreeMap::new()),
            reloads: AtomicU64::new(0),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The version serving `channel` right now. Hold the `Arc` for the whole operation so a
    /// reload in between cannot change the plugin under it.
    pub fn get(&self, channel: &str) -> Option<Arc<Channel>> {
        self.channels.load().get(channel).cloned()
    }

    pub fn channels(&self) -> Vec<Arc<Channel>> {
        let mut all: Vec<_> = self.channels.load().values().cloned().collect();
        all.sort_by(|a, b| a.id().cmp(b.id()));
        all
    }

    pub fn statuses(&self) -> Vec<ChannelStatus> {
        self.channels().iter().map(|c| c.status()).collect()
    }

    /// How many reloads have run since start.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    pub async fn failures(&self) -> Vec<FileFailure> {
        let files = self.files.lock().await;
        files.values().filter_map(|r| r.failure.clone()).collect()
    }

    /// Loads new and changed `*.wasm` files, drops channels whose file is gone, and publishes
    /// the result atomically. Unchanged files (same SHA-256) are not touched.
    pub async fn reload(&self) -> ReloadReport {
        let mut files = self.files.lock().await;
        self.reloads.fetch_add(1, Ordering::Relaxed);
        let mut next: HashMap<String, Arc<Channel>> = (**self.channels.load()).clone();
        let mut report = ReloadReport::default();

        let paths = match list_plugin_files(&self.dir) {
            Ok(paths) => paths,
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), error = %e, "cannot list the plugins directory; keeping every loaded plugin");
                report
                    .failed
                    .push(failure(&self.dir, "", &e.to_string(), None));
                return report;
            }
        };

        for gone in files
            .keys()
            .filter(|p| !paths.contains(p))
            .cloned()
            .collect::<Vec<_>>()
        {
            if let Some(channel) = files.remove(&gone).and_then(|r| r.channel) {
                next.remove(&channel);
                tracing::info!(%channel, file = %gone.display(), "plugin file removed; channel unloaded");
                report.removed.push(channel);
            }
        }

        for path in paths {
            let previous = files.get(&path).cloned().unwrap_or_default();
            let file = match read_plugin_file(&path) {
                Ok(file) => file,
                Err(e) => {
                    let f = failure(&path, "", &e.to_string(), previous.channel.clone());
                    report.failed.push(f.clone());
                    files.insert(
                        path,
                        FileRecord {
                            failure: Some(f),
                            ..previous
                        },
                    );
                    continue;
                }
            };
            // The same bytes are loaded again only if they failed last time (a transient
            // failure, such as a timeout on a loaded machine, must not stick).
            if file.sha256 == previous.sha256 && previous.failure.is_none() {
                report.unchanged += 1;
                continue;
            }
            let sha256 = file.sha256.clone();
            let loaded = load_channel(&self.engine, &self.cache, &self.configs, file).await;
            match loaded {
                Ok(channel) => {
                    let id = channel.id().to_owned();
                    if let Some(old) = previous.channel.as_ref().filter(|old| **old != id) {
                        next.remove(old);
                    }
                    tracing::info!(
                        channel = %id,
                        version = %channel.info().version,
                        file = %path.display(),
                        sha256 = %sha256,
                        from_cache = channel.status().from_cache,
                        "plugin loaded"
                    );
                    report
                        .loaded
                        .push((id.clone(), channel.info().version.clone()));
                    next.insert(id.clone(), Arc::new(channel));
                    files.insert(
                        path,
                        FileRecord {
                            sha256,
                            channel: Some(id),
                            failure: None,
                        },
                    );
                }
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %e, still_serving = ?previous.channel, "plugin rejected");
                    let f = failure(&path, &sha256, &e.to_string(), previous.channel.clone());
                    report.failed.push(f.clone());
                    files.insert(
                        path,
                        FileRecord {
                            sha256,
                            channel: previous.channel,
                            failure: Some(f),
                        },
                    );
                }
            }
        }

        self.channels.store(Arc::new(next));
        report
    }
}

fn list_plugin_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wasm") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

fn read_plugin_file(path: &Path) -> Result<PluginFile, LoadError> {
    let io = |source| LoadError::Io {
        path: path.display().to_string(),
        source,
    };
    let size_bytes = std::fs::metadata(path).map_err(io)?.len();
    if size_bytes > MAX_PLUGIN_FILE_BYTES {
        return Err(LoadError::TooLarge {
            size_bytes,
            limit_bytes: MAX_PLUGIN_FILE_BYTES,
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    Ok(PluginFile {
        path: path.to_owned(),
        bytes,
        sha256,
    })
}

fn failure(path: &Path, sha256: &str, error: &str, still_serving: Option<String>) -> FileFailure {
    FileFailure {
        file: path.display().to_string(),
        sha256: sha256.to_owned(),
        error: error.to_owned(),
        at_ms: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        still_serving,
    }
}
