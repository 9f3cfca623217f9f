//! Compiled plugins cached on disk by content hash, so a restart loads in milliseconds instead
//! of recompiling.
//!
//! Security: a cached artifact is native code that wasmtime loads without re-verifying it. The
//! cache directory must be writable only by the service user, like the binary itself.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::LoadError;

#[derive(Debug, Clone, Default)]
pub struct ArtifactCache {
    dir: Option<PathBuf>,
}

impl ArtifactCache {
    /// A cache in `dir` (created if missing), or no caching at all with `None`.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    /// The compiled component for these bytes, and whether it came from the cache.
    pub(crate) fn component(
        &self,
        engine: &Engine,
        bytes: &[u8],
        sha256: &str,
    ) -> Result<(Component, bool), LoadError> {
        let Some(dir) = self.dir.as_ref().filter(|d| trusted_dir(d)) else {
            return compile(engine, bytes).map(|c| (c, false));
        };
        let path = dir.join(format!(
            "{sha256}-{:016x}.cwasm",
            engine_fingerprint(engine)
        ));
        // Read into memory rather than mapping the file: a mapped file truncated behind our
        // back (by an operator, by another process) would crash the host with SIGBUS.
        if let Ok(artifact) = std::fs::read(&path) {
            // SAFETY: the file was written by `store` below from a component this engine
            // compiled; the cache directory is trusted like the binary (see module docs).
            // wasmtime still checks the artifact's header for engine compatibility.
            match unsafe { Component::deserialize(engine, &artifact) } {
                Ok(component) => return Ok((component, true)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "discarding unusable cached plugin artifact");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let component = compile(engine, bytes)?;
        if let Err(e) = store(&path, &component) {
            // A cache that cannot be written costs a recompile at the next start, nothing more.
            tracing::warn!(path = %path.display(), error = %e, "cannot cache compiled plugin");
        }
        Ok((component, false))
    }
}

fn compile(engine: &Engine, bytes: &[u8]) -> Result<Component, LoadError> {
    Component::new(engine, bytes).map_err(|e| LoadError::Compile(format!("{e:#}")))
}

/// The cache is used only if it is a directory nobody but its owner can write to (it is created
/// that way); otherwise compiled code from it could be someone else's.
fn trusted_dir(dir: &Path) -> bool {
    if !dir.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        if let Err(e) = builder.create(dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot create the plugin cache; compiling without it");
            return false;
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let writable_by_others = std::fs::metadata(dir)
            .map(|m| !m.is_dir() || m.permissions().mode() & 0o022 != 0)
            .unwrap_or(true);
        if writable_by_others {
            tracing::warn!(dir = %dir.display(), "plugin cache is writable by group or others; not using it (chmod 700)");
            return false;
        }
    }
    true
}

/// Writes to a temporary name and renames, so a crash never leaves half an artifact behind.
fn store(path: &Path, component: &Component) -> anyhow::Result<()> {
    let bytes = component.serialize()?;
    let temp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temp, bytes)?;
    std::fs::rename(&temp, path)?;
    Ok(())
}

/// Distinguishes artifacts of different engine versions and settings.
fn engine_fingerprint(engine: &Engine) -> u64 {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.finish()
}
