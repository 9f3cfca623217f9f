//! What the host knows about each channel: settings, endpoints (the egress allow-list) and keys.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use url::Url;

use crate::error::PluginError;
use crate::keys::KeyRing;

/// A base URL a channel's requests may go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint(Url);

impl Endpoint {
    /// Accepts an absolute https URL without credentials, query or fragment; plain http only
    /// for loopback hosts (the simulator, local tests), since answers must not be alterable on
    /// the way.
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(name)) => name == "localhost",
            None => false,
        };
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => return Err(format!("{text:?} must be https (http only for loopback)")),
            _ => return Err(format!("{text:?} must be https")),
        }
        if url.host_str().is_none() || !url.username().is_empty() || url.password().is_some() {
            return Err(format!("{text:?} needs a host and no credentials"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("{text:?} must not have a query or fragment"));
        }
        Ok(Self(url))
    }

    /// The endpoint as plugins see it, without a trailing slash ("https://pay.example/api").
    pub fn as_str(&self) -> &str {
        self.0.as_str().trim_end_matches('/')
    }

    /// True if `url` is on the same origin and under this endpoint's path, at a segment boundary:
    /// "https://pay.example/api" allows "/api" and "/api/pay" but not "/api2" or "/".
    fn allows(&self, url: &Url) -> bool {
        // An encoded slash, backslash or dot may be decoded by a proxy or the server into a
        // path outside the endpoint.
        let lowered = url.path().to_ascii_lowercase();
        if ["%2f", "%5c", "%2e"].iter().any(|e| lowered.contains(e)) {
            return false;
        }
        if url.scheme() != self.0.scheme()
            || url.host() != self.0.host()
            || url.port_or_known_default() != self.0.port_or_known_default()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return false;
        }
        let base = self.0.path().trim_end_matches('/');
        match url.path().strip_prefix(base) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }
}

/// One channel's configuration, shared by every version of its plugin.
#[derive(Debug, Default)]
pub struct ChannelConfig {
    /// Non-secret settings the plugin reads with `host.setting`.
    pub settings: BTreeMap<String, String>,
    /// Named base URLs: what `host.endpoint` returns, and the only places requests may go.
    pub endpoints: BTreeMap<String, Endpoint>,
    pub keys: KeyRing,
}

impl ChannelConfig {
    /// Refuses a plugin-built request unless its URL lies under one of the endpoints.
    pub fn check_egress(&self, url: &str) -> Result<(), PluginError> {
        let denied = || PluginError::EgressDenied {
            url: url.to_owned(),
        };
        let parsed = Url::parse(url).map_err(|_| denied())?;
        if self.endpoints.values().any(|e| e.allows(&parsed)) {
            Ok(())
        } else {
            Err(denied())
        }
    }
}

/// Every channel's configuration, by channel id. A channel without an entry gets an empty one:
/// its plugin loads, but cannot sign anything or reach any host.
#[derive(Debug, Default, Clone)]
pub struct ChannelConfigs {
    by_channel: HashMap<String, Arc<ChannelConfig>>,
}

impl ChannelConfigs {
    pub fn insert(&mut self, channel: impl Into<String>, config: ChannelConfig) {
        self.by_channel.insert(channel.into(), Arc::new(config));
    }

    pub fn get(&self, channel: &str) -> Arc<ChannelConfig> {
        self.by_channel.get(channel).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(endpoints: &[&str]) -> ChannelConfig {
        ChannelConfig {
            endpoints: endpoints
                .iter()
                .enumerate()
                .map(|(i, e)| (i.to_string(), Endpoint::parse(e).unwrap()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn allows_only_urls_under_an_endpoint() {
        let c = config(&["https://pay.example/api/"]);
        assert!(c.check_egress("https://pay.example/api").is_ok());
        assert!(c.check_egress("https://pay.example/api/v1/pay?x=1").is_ok());
        for denied in [
            "https://pay.example/api2/pay",
            "https://pay.example/",
            "http://pay.example/api/pay",
            "https://pay.example:8443/api/pay",
            "https://pay.example.evil.test/api/pay",
            "https://user:pw@pay.example/api/pay",
            "https://evil.test/api/pay",
            "not a url",
        ] {
            assert!(c.check_egress(denied).is_err(), "{denied} must be denied");
        }
    }

    #[test]
    fn dot_segments_cannot_escape_the_endpoint_path() {
        let c = config(&["https://pay.example/api"]);
        // The URL parser resolves "..", so the request really targets /admin.
        assert!(c.check_egress("https://pay.example/api/../admin").is_err());
        // Encoded separators a proxy might decode are refused outright.
        for sneaky in [
            "https://pay.example/api/..%2Fadmin",
            "https://pay.example/api/%2e%2e/admin",
            "https://pay.example/api/..%5cadmin",
        ] {
            assert!(c.check_egress(sneaky).is_err(), "{sneaky}");
        }
    }

    #[test]
    fn plain_http_only_for_loopback() {
        assert!(Endpoint::parse("http://pay.example/api").is_err());
        assert!(Endpoint::parse("http://127.0.0.1:9100/api").is_ok());
        assert!(Endpoint::parse("http://localhost:9100/api").is_ok());
        assert!(Endpoint::parse("http://[::1]:9100/api").is_ok());
    }

    #[test]
    fn endpoint_rejects_query_credentials_and_other_schemes() {
        assert!(Endpoint::parse("ftp://pay.example").is_err());
        assert!(Endpoint::parse("https://u:p@pay.example").is_err());
        assert!(Endpoint::parse("https://pay.example/?a=1").is_err());
        assert_eq!(
            Endpoint::parse("https://pay.example/api/")
                .unwrap()
                .as_str(),
            "https://pay.example/api"
        );
    }
}
