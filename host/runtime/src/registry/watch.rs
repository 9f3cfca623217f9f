//! Reloads the registry when files in the plugins directory change.

use std::sync::Arc;
use std::time::Duration;

use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::Registry;

/// Copying a file produces a burst of events; reload once the burst has been quiet this long.
const QUIET_PERIOD: Duration = Duration::from_millis(300);

/// Watches the plugins directory while alive. Dropping it stops the watching.
pub struct DirectoryWatcher {
    _watcher: RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DirectoryWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// True for a change to a plugin file. Reads are not changes, and the reload itself reads
/// every file: counting them would reload forever.
fn changes_a_plugin(event: &notify::Result<Event>) -> bool {
    let Ok(event) = event else {
        // The watcher lost track (e.g. an event queue overflow): rescan to be safe.
        return true;
    };
    let is_change = matches!(
        event.kind,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
    );
    is_change
        && event
            .paths
            .iter()
            .any(|p| p.extension().is_some_and(|x| x == "wasm"))
}

impl DirectoryWatcher {
    pub fn spawn(registry: Arc<Registry>) -> notify::Result<Self> {
        // One pending signal is enough: a reload rescans the whole directory.
        let (tx, mut rx) = mpsc::channel::<()>(1);
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
            if changes_a_plugin(&event) {
                let _ = tx.try_send(());
            }
        })?;
        watcher.watch(registry.dir(), RecursiveMode::NonRecursive)?;

        let task = tokio::spawn(async move {
            while rx.recv().await.is_some() {
                while let Ok(Some(())) = tokio::time::timeout(QUIET_PERIOD, rx.recv()).await {}
                let report = registry.reload().await;
                tracing::debug!(
                    loaded = report.loaded.len(),
                    failed = report.failed.len(),
                    removed = report.removed.len(),
                    "plugins directory changed; reloaded"
                );
            }
        });
        Ok(Self {
            _watcher: watcher,
            task,
        })
    }
}
