//! What every test world needs: the built plugin files and the simulator's keys.

use std::path::{Path, PathBuf};

use coffer_sim::SimKeys;

/// A plugin or fixture built by `cargo xtask build-plugins`.
pub fn fixture(name: &str) -> PathBuf {
    let dir = std::env::var_os("COFFER_FIXTURES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/wasm-fixtures"));
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} missing: run `cargo xtask build-plugins`",
        path.display()
    );
    path
}

/// RSA key generation takes a while: one set of simulator keys per test binary.
pub fn shared_keys() -> SimKeys {
    static KEYS: std::sync::OnceLock<SimKeys> = std::sync::OnceLock::new();
    KEYS.get_or_init(SimKeys::generate).clone()
}
