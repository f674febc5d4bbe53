//! The client's settings, from `Client(...)`'s arguments: the node addresses, the replica
//! groups and write quorum, the namespace names live in, the access key and TLS.

use std::path::PathBuf;
use std::time::Duration;

use ringblob_protocol::auth::AccessKey;
use ringblob_protocol::client::{ClientConfig, ClientSecurity, Credentials, Quorum};
use ringblob_protocol::tls::TlsClient;

use crate::failure::Failure;

/// TLS as `Client(tls=...)` asks for it (`True` is all defaults).
#[derive(Debug, Default, Clone)]
pub struct TlsAsk {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub server_name: Option<String>,
}

/// Everything a client needs besides its connection.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Tried in order until one answers.
    pub addrs: Vec<String>,
    pub namespace: String,
    /// Replica groups in preference order; empty: the first node's own group.
    pub groups: Vec<u32>,
    pub quorum: Quorum,
    pub config: ClientConfig,
}

impl Settings {
    pub fn new(
        addrs: Vec<String>,
        (namespace, groups, w): (String, Vec<u32>, &str),
        key: Option<&str>,
        tls: Option<TlsAsk>,
        timeout_secs: f64,
    ) -> Result<Settings, Failure> {
        if addrs.is_empty() {
            return Err(Failure::Usage("no node address given".into()));
        }
        let quorum: Quorum = w
            .parse()
            .map_err(|_| Failure::Usage(format!("w={w:?}: one of one, quorum, all")))?;
        if !(timeout_secs.is_finite() && timeout_secs > 0.0) {
            return Err(Failure::Usage(format!(
                "timeout={timeout_secs}: a positive number of seconds"
            )));
        }
        let key = key
            .map(AccessKey::parse)
            .transpose()
            .map_err(|e| Failure::Usage(format!("key: {e}")))?;
        let tls = match tls {
            None => None,
            Some(t) => {
                let identity = t.cert.as_deref().zip(t.key.as_deref());
                let loaded = TlsClient::load(t.ca.as_deref(), identity, t.server_name)
                    .map_err(|e| Failure::Usage(format!("tls: {e}")))?;
                Some(loaded)
            }
        };
        let config = ClientConfig {
            timeout: Duration::from_secs_f64(timeout_secs),
            name: format!("ringblob-python/{}", env!("CARGO_PKG_VERSION")),
            security: ClientSecurity {
                credentials: Credentials::new(key),
                tls,
            },
            ..ClientConfig::default()
        };
        Ok(Settings {
            addrs,
            namespace,
            groups,
            quorum,
            config,
        })
    }
}
