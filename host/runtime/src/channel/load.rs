//! Turning a `.wasm` file into a [`Channel`]: compile (or take from the cache), check the
//! contract version, link, instantiate once and validate what `info()` says.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use coffer_money::Currency;
use wasmtime::component::Component;

use super::{ArtifactCache, Channel};
use crate::bindings::SUPPORTED_CONTRACT_VERSIONS;
use crate::bindings::plugin::PluginPre;
use crate::bindings::types::ChannelInfo;
use crate::config::ChannelConfigs;
use crate::engine::PluginEngine;
use crate::error::LoadError;

/// The WIT package plugins implement; the version follows the '@' in import and export names.
const CONTRACT_PACKAGE: &str = "coffer:channel/";

/// A plugin file read from disk.
pub(crate) struct PluginFile {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub sha256: String,
}

pub(crate) async fn load_channel(
    engine: &PluginEngine,
    cache: &ArtifactCache,
    configs: &ChannelConfigs,
    file: PluginFile,
) -> Result<Channel, LoadError> {
    let started = Instant::now();
    let (component, from_cache) = {
        let engine = engine.wasmtime().clone();
        let cache = cache.clone();
        let (bytes, sha256) = (file.bytes, file.sha256.clone());
        // Compiling takes hundreds of milliseconds of CPU: keep it off the async workers.
        tokio::task::spawn_blocking(move || cache.component(&engine, &bytes, &sha256))
            .await
            .map_err(|e| LoadError::Compile(format!("compiler task failed: {e}")))??
    };
    let version = contract_version(engine, &component)?;
    let instance_pre = engine
        .inner
        .linker
        .instantiate_pre(&component)
        .map_err(|e| LoadError::Link(format!("{e:#}")))?;
    let pre =
        PluginPre::new(version, instance_pre).map_err(|e| LoadError::Link(format!("{e:#}")))?;

    let mut channel = Channel {
        info: placeholder_info(),
        id: Arc::from("(loading)"),
        pre,
        engine: engine.clone(),
        // info() runs before the channel id is known, so with no settings or keys at all.
        config: Default::default(),
        file: file.path,
        sha256: file.sha256,
        loaded_at: SystemTime::now(),
        load_time: Default::default(),
        from_cache,
        access: Default::default(),
    };
    let info = channel.call_info().await?;
    validate_info(&info, version)?;
    // The operator names the file, the plugin only claims an id: the two must agree, or a
    // plugin could claim another channel's configuration and keys.
    let expected_file = format!("{}.wasm", info.id);
    if channel.file.file_name().and_then(|n| n.to_str()) != Some(expected_file.as_str()) {
        return Err(LoadError::WrongFileName {
            channel: info.id.clone(),
            expected: expected_file,
        });
    }
    channel.id = Arc::from(info.id.as_str());
    channel.config = configs.get(&info.id);
    channel.info = info;
    channel.load_time = started.elapsed();
    Ok(channel)
}

/// The contract version the component implements, one the host supports, or a refusal
/// naming both sides. Without this the linker would fail with a less helpful "import not
/// found". Every contract interface it names must be of that one version.
fn contract_version(
    engine: &PluginEngine,
    component: &Component,
) -> Result<&'static str, LoadError> {
    let ty = component.component_type();
    let wasmtime = engine.wasmtime();
    let names = ty
        .imports(wasmtime)
        .map(|(n, _)| n)
        .chain(ty.exports(wasmtime).map(|(n, _)| n));
    let mismatch = |found: &str| LoadError::ContractMismatch {
        found: found.to_owned(),
        expected: SUPPORTED_CONTRACT_VERSIONS.join(", "),
    };
    let mut version: Option<&'static str> = None;
    let mut exports_plugin = false;
    for name in names {
        let Some(rest) = name.strip_prefix(CONTRACT_PACKAGE) else {
            continue;
        };
        let (interface, found) = rest.split_once('@').unwrap_or((rest, "(unversioned)"));
        let supported = supported_version(found).ok_or_else(|| mismatch(found))?;
        if version.is_some_and(|v| v != supported) {
            return Err(mismatch(&format!(
                "{} and {found} at once",
                version.unwrap_or_default()
            )));
        }
        version = Some(supported);
        exports_plugin |= interface == "plugin";
    }
    match version {
        Some(version) if exports_plugin => Ok(version),
        _ => Err(mismatch("none (it does not export coffer:channel/plugin)")),
    }
}

/// The supported version `found` is compatible with.
fn supported_version(found: &str) -> Option<&'static str> {
    SUPPORTED_CONTRACT_VERSIONS
        .iter()
        .copied()
        .find(|supported| compatible(found, supported))
}

/// Semver compatibility as the component model applies it: same major, and before 1.0 the
/// same minor.
fn compatible(found: &str, ours: &str) -> bool {
    let parts = |v: &str| -> Option<(u64, u64)> {
        let mut it = v.split(['.', '-', '+']);
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    };
    match (parts(found), parts(ours)) {
        (Some((0, found_minor)), Some((0, our_minor))) => found_minor == our_minor,
        (Some((found_major, _)), Some((our_major, _))) => found_major == our_major,
        _ => false,
    }
}

fn validate_info(info: &ChannelInfo, version: &str) -> Result<(), LoadError> {
    let invalid = |why: String| Err(LoadError::InvalidInfo(why));
    let id_ok = (1..=32).contains(&info.id.len())
        && info.id.starts_with(|c: char| c.is_ascii_lowercase())
        && info
            .id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !id_ok {
        return invalid(format!(
            "channel id {:?} must be 1-32 lower-case letters, digits or '-', starting with a letter",
            info.id
        ));
    }
    // The plugin's word must agree with the interfaces it exports.
    if !compatible(&info.contract_version, version) {
        return invalid(format!(
            "it says it was built for contract {}, but it exports coffer:channel@{version}",
            info.contract_version
        ));
    }
    let version_ok = info.version.split(['-', '+']).next().is_some_and(|core| {
        let parts: Vec<_> = core.split('.').collect();
        parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.parse::<u64>().is_ok())
    });
    if !version_ok {
        return invalid(format!(
            "version {:?} is not semantic (x.y.z)",
            info.version
        ));
    }
    if info.name.trim().is_empty() {
        return invalid("name is empty".into());
    }
    if let Some(bad) = info.currencies.iter().find(|c| Currency::parse(c).is_err()) {
        return invalid(format!("currency {bad:?} is not a supported ISO 4217 code"));
    }
    Ok(())
}

fn placeholder_info() -> ChannelInfo {
    ChannelInfo {
        id: String::new(),
        name: String::new(),
        version: String::new(),
        contract_version: String::new(),
        methods: vec![],
        flows: vec![],
        currencies: vec![],
        countries: vec![],
        keys: vec![],
        settings: vec![],
        endpoints: vec![],
        supports_refund: false,
        supports_partial_refund: false,
        supports_statement: false,
    }
}

#[cfg(test)]
mod tests {
    use super::{compatible, supported_version};

    #[test]
    fn contract_versions_follow_component_model_semver() {
        assert!(compatible("0.1.0", "0.1.0"));
        assert!(compatible("0.1.3", "0.1.0"));
        assert!(!compatible("0.2.0", "0.1.0"));
        assert!(!compatible("1.0.0", "0.1.0"));
        assert!(compatible("1.4.0", "1.0.0"));
        assert!(!compatible("garbage", "0.1.0"));
    }

    #[test]
    fn every_supported_contract_version_is_found_and_no_other() {
        assert_eq!(supported_version("0.2.0"), Some("0.2.0"));
        assert_eq!(supported_version("0.2.4"), Some("0.2.0"));
        assert_eq!(supported_version("0.1.0"), Some("0.1.0"));
        assert_eq!(supported_version("0.9.0"), None);
        assert_eq!(supported_version("0.0.1"), None);
    }
}
