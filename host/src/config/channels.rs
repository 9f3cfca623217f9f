//! The `[channels.<id>]` sections: what each channel plugin may read and call, and its keys.

use std::collections::BTreeMap;

use coffer_plugin_runtime::{ChannelConfig, ChannelConfigs, Endpoint, KeyRing, KeySource};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelSection {
    /// Non-secret settings: merchant ids, app ids, fee rates.
    pub settings: BTreeMap<String, String>,
    /// Named base URLs. The only places this channel's requests may go.
    pub endpoints: BTreeMap<String, String>,
    /// Key files, by the name the plugin uses:
    /// `{ file = "keys/alipay.pem", format = "pem" }` (pem, hex, base64 or raw).
    #[serde(skip_serializing)]
    pub keys: BTreeMap<String, KeySource>,
}

impl ChannelSection {
    pub(super) fn validate(&self) -> Result<(), String> {
        for (name, url) in &self.endpoints {
            Endpoint::parse(url).map_err(|why| format!("endpoint {name}: {why}"))?;
        }
        Ok(())
    }
}

/// Builds the runtime's view of every channel, reading every key file now so that a missing
/// or malformed key stops the start, naming the key, instead of failing a payment later.
pub fn load_channel_configs(
    sections: &BTreeMap<String, ChannelSection>,
) -> anyhow::Result<ChannelConfigs> {
    let mut configs = ChannelConfigs::default();
    for (id, section) in sections {
        let keys =
            KeyRing::load(&section.keys).map_err(|e| anyhow::anyhow!("channels.{id}: {e}"))?;
        let endpoints = section
            .endpoints
            .iter()
            .map(|(name, url)| {
                Ok((
                    name.clone(),
                    Endpoint::parse(url).map_err(anyhow::Error::msg)?,
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        configs.insert(
            id.clone(),
            ChannelConfig {
                settings: section.settings.clone(),
                endpoints,
                keys,
            },
        );
    }
    Ok(configs)
}
